import { test, expect } from "@playwright/test";
import { admin, signIn } from "./helpers";

// A rule that fires at once on the test host's CPU (always >= 0): within a few evaluation
// rounds (OPSDECK_ALERT_INTERVAL=2s here) the Overview says something is wrong and names it,
// and the Alerts page lists it as firing, with an acknowledge button that works.
test("a firing alert shows on the Overview and can be acknowledged", async ({ page }) => {
  await signIn(page, admin, "/");
  await expect(page).toHaveURL(/\/$/);
  const res = await page.request.post("/api/v1/alerts/rules", {
    data: { name: "e2e CPU watch", kind: "metric", host: "e2e-host", metric: "cpu_usage_percent", op: ">=", threshold: 0 },
  });
  expect(res.status()).toBe(201);
  const wrong = page.getByTestId("anything-wrong");
  await expect.poll(async () => {
    await page.reload();
    return (await wrong.textContent()) ?? "";
  }, { timeout: 30_000 }).toContain("e2e CPU watch");
  await expect(page.getByTestId("overview-alert").filter({ hasText: "e2e CPU watch" })).toContainText("cpu_usage_percent");

  await page.goto("/alerts");
  const row = page.getByTestId("active-alert").filter({ hasText: "e2e CPU watch" });
  await expect(row).toContainText("firing");
  await row.getByRole("button", { name: "Acknowledge" }).click();
  await expect(row).toContainText("acked by admin");

  // Deleting the rule clears the Overview again (other default rules may still fire on a
  // busy CI machine, so only this one is checked).
  const rules = await (await page.request.get("/api/v1/alerts/rules")).json();
  const id = rules.find((r: any) => r.name === "e2e CPU watch").id;
  expect((await page.request.delete(`/api/v1/alerts/rules/${id}`)).status()).toBe(204);
  await page.goto("/");
  await expect(page.getByTestId("anything-wrong")).not.toContainText("e2e CPU watch");
});

// Opsdeck checks its own /api/v1/health from the first start.
test("the Health checks page shows Opsdeck's own check up with its uptime", async ({ page }) => {
  await signIn(page, admin, "/checks");
  const card = page.getByTestId("check-card").filter({ hasText: "opsdeck" });
  await expect(card).toBeVisible();
  await expect.poll(async () => {
    await page.reload();
    return (await card.getByTestId("alert-status").textContent()) ?? "";
  }, { timeout: 30_000 }).toBe("up");
  await expect(card.getByTestId("uptime-24h")).toContainText("%");
});

// On a phone the answer is the first thing on the Overview, and nothing scrolls sideways.
test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 } });
  test("the Overview's alert panel is on screen without sideways scrolling", async ({ page }) => {
    await signIn(page, admin, "/");
    await expect(page).toHaveURL(/\/$/);
    const panel = page.getByTestId("anything-wrong");
    await expect(panel).toBeInViewport();
    const box = await panel.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  });
});
