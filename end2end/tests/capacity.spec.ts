import { test, expect } from "@playwright/test";
import { admin, signIn } from "./helpers";

// The test server has minutes of history: the Capacity page lists its host's resources and says
// plainly that there is not enough data yet, rather than a made-up forecast.
test("the Capacity page lists resources and says when there is not enough data", async ({ page }) => {
  await signIn(page, admin, "/capacity");
  await expect(page).toHaveURL(/\/capacity$/);
  const rows = page.getByTestId("forecast-row");
  // The collector reports every 2 s; the first report may not be in yet.
  await expect.poll(async () => {
    await page.reload();
    return await rows.count();
  }, { timeout: 20_000 }).toBeGreaterThan(0);
  await expect(rows.filter({ hasText: "cpu usage percent" })).toContainText("not enough data");
  await expect(rows.filter({ hasText: "memory used percent" })).toContainText("e2e-host");
});
