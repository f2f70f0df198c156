import { test, expect, Page } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

const PAGES = ["/", "/incidents", "/hosts", "/logs", "/services", "/backups", "/capacity", "/alerts", "/checks", "/admin/users", "/admin/audit", "/admin/tokens", "/admin/log-sources"];
const SECTIONS = ["Overview", "Incidents", "Hosts", "Logs", "Services", "Backups", "Capacity", "Alerts", "Checks", "Admin"];

/** Console errors and failed page scripts while `visit` runs. */
async function consoleErrors(page: Page, visit: () => Promise<void>): Promise<string[]> {
  const errors: string[] = [];
  const onConsole = (m: { type(): string; text(): string }) => { if (m.type() === "error") errors.push(m.text()); };
  const onError = (e: Error) => errors.push(e.message);
  page.on("console", onConsole);
  page.on("pageerror", onError);
  await visit();
  page.off("console", onConsole);
  page.off("pageerror", onError);
  return errors;
}

for (const width of [1366, 390]) {
  test(`every page opens without a console error, every section reachable (${width} px)`, async ({ page }) => {
    await page.setViewportSize({ width, height: 860 });
    await signIn(page, admin, "/");
    await expect(page).toHaveURL(/\/$/);
    for (const path of PAGES) {
      const errors = await consoleErrors(page, async () => {
        await page.goto(path);
        await hydrated(page);
        await page.waitForLoadState("networkidle");
      });
      expect(errors, `console errors on ${path}`).toEqual([]);
      // Nothing wider than the screen: no sideways scrolling to reach a row's actions.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `sideways overflow on ${path}`).toBeLessThanOrEqual(0);
    }
    // Every section of the navigation is on screen (wrapping on a phone, not scrolled away).
    const nav = page.getByRole("navigation", { name: "Main" });
    for (const label of SECTIONS) {
      const link = nav.getByRole("link", { name: label, exact: true });
      await expect(link).toBeVisible();
      const box = (await link.boundingBox())!;
      expect(box.x, label).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, label).toBeLessThanOrEqual(width);
    }
  });
}

test("on a phone the alert rules' actions are on screen", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 860 });
  await signIn(page, admin, "/alerts");
  await expect(page).toHaveURL(/\/alerts$/);
  const turnOff = page.getByRole("button", { name: "Turn off" }).first();
  await expect(turnOff).toBeVisible();
  const box = (await turnOff.boundingBox())!;
  expect(box.x + box.width).toBeLessThanOrEqual(390);
  const why = page.locator("table td").filter({ hasText: "above" }).first();
  if (await why.count()) {
    // The "Why" text runs on a line, not one letter per line.
    const b = (await why.boundingBox())!;
    expect(b.width).toBeGreaterThan(100);
  }
});
