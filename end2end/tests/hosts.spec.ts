import { test, expect } from "@playwright/test";
import { admin, signIn, hydrated } from "./helpers";

// scripts/test.sh starts the server with OPSDECK_HOST_NAME=e2e-host and a 2 s collect interval.
test("the host page shows charts with data after the collector has run", async ({ page }) => {
  await signIn(page, admin, "/hosts");
  await expect(page).toHaveURL(/\/hosts$/);
  const card = page.getByTestId("host-card-e2e-host");
  await expect(async () => {
    await page.reload();
    await expect(card).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(card).toContainText("CPU");
  await expect(card).toContainText("%");

  await hydrated(page);
  await card.getByRole("link", { name: "e2e-host" }).click();
  await expect(page).toHaveURL(/\/hosts\/e2e-host$/);
  const cpu = page.getByTestId("chart-cpu");
  await expect(cpu.locator("svg")).toBeVisible();
  await expect(page.getByTestId("chart-memory").locator("svg")).toBeVisible();
  await expect(page.getByTestId("chart-disk:/").locator("svg")).toBeVisible();

  // The value under the pointer, once hydrated.
  await hydrated(page);
  const overlay = cpu.locator(".chart-overlay");
  const box = await overlay.boundingBox();
  expect(box).not.toBeNull();
  await page.mouse.move(box!.x + box!.width * 0.95, box!.y + box!.height / 2);
  await expect(cpu.getByTestId("chart-tooltip")).toContainText("cpu:");
  await expect(cpu.getByTestId("chart-tooltip")).toContainText("%");
  // One crosshair: the other charts of the page show the same moment.
  await expect(page.getByTestId("chart-memory").getByTestId("chart-tooltip")).toBeVisible();

  // Another range.
  await page.getByRole("link", { name: "6h", exact: true }).click();
  await expect(page).toHaveURL(/range=6h/);
  await expect(page.getByTestId("host-status")).toContainText("showing 6h");
  // The range goes along to the other time pages.
  await hydrated(page);
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Logs" })).toHaveAttribute("href", "/logs?range=6h");
  await expect(page.getByRole("link", { name: "Services on this host" })).toHaveAttribute("href", "/services?host=e2e-host&range=6h");
  await expect(nav.getByRole("link", { name: "Backups" })).toHaveAttribute("href", "/backups");

  // Drag across a chart to zoom in: the window goes into the address; Zoom out widens it.
  await hydrated(page);
  const plot = page.getByTestId("chart-cpu").locator(".chart-overlay");
  const b = (await plot.boundingBox())!;
  await page.mouse.move(b.x + b.width * 0.5, b.y + b.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width * 0.8, b.y + b.height / 2, { steps: 5 });
  await expect(page.getByTestId("chart-cpu").getByTestId("zoom-select")).toBeVisible();
  await page.mouse.up();
  await expect(page).toHaveURL(/\/hosts\/e2e-host\?from=\d+&to=\d+$/);
  await expect(page.getByTestId("host-status")).toContainText("showing custom");
  const span = () => {
    const u = new URL(page.url());
    return Number(u.searchParams.get("to")) - Number(u.searchParams.get("from"));
  };
  const zoomed = span();
  expect(zoomed).toBeGreaterThan(3600);
  expect(zoomed).toBeLessThan(3 * 3600);
  await page.getByTestId("zoom-out").click();
  await expect(page).toHaveURL(/from=\d+&to=\d+$/);
  await expect.poll(span).toBe(2 * zoomed);
});

test("the overview shows a card per host", async ({ page }) => {
  await signIn(page, admin);
  await expect(page.getByTestId("host-card-e2e-host")).toBeVisible();
  await expect(page.getByTestId("health-database")).toContainText("Reachable");
});
