import { test, expect } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// The test seeds the data it judges: a host with ten minutes of samples (busy, at 95 % CPU) gets
// "not enough data" rather than a made-up forecast, whatever the machine running the test does.
// The server's own host is only checked for being listed (its values are the machine's).
test("the Capacity page lists resources and says when there is not enough data", async ({ page, request, baseURL }) => {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const origin = { origin: baseURL! };
  const tok = await request.post("/api/v1/tokens", {
    data: { name: `e2e-capacity-${Date.now()}`, scope: "ingest" },
    headers: origin,
  });
  expect(tok.status()).toBe(201);
  const token = (await tok.json()).token;
  const now = Date.now();
  const samples = [];
  for (let m = 10; m >= 0; m--) {
    const ts = new Date(now - m * 60_000).toISOString();
    samples.push({ metric: "cpu_usage_percent", ts, value: 95 });
    samples.push({ metric: "memory_used_percent", ts, value: 40 + m / 10 });
  }
  const ingest = await request.post("/api/v1/ingest/metrics", {
    data: { host: "e2e-seeded", samples },
    headers: { authorization: `Bearer ${token}` },
  });
  expect(ingest.status()).toBe(200);

  await signIn(page, admin, "/capacity");
  await expect(page).toHaveURL(/\/capacity$/);
  const rows = page.getByTestId("forecast-row");
  const seeded = rows.filter({ hasText: "e2e-seeded" });
  await expect.poll(async () => {
    await page.reload();
    return await seeded.count();
  }, { timeout: 20_000 }).toBeGreaterThan(1);
  await expect(seeded.filter({ hasText: "CPU" })).toContainText("not enough data");
  await expect(seeded.filter({ hasText: "Memory" })).toContainText("not enough data");
  // The collector reports every 2 s: the server's own host is listed too.
  await expect.poll(async () => {
    await page.reload();
    return await rows.filter({ hasText: "e2e-host" }).count();
  }, { timeout: 20_000 }).toBeGreaterThan(0);

  // The time picker: a longer history, kept in the address, the same forecasts.
  await page.goto("/capacity");
  await expect(page.getByTestId("capacity-range")).toContainText("History of the last 7d");
  await page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "30d" }).click();
  await expect(page).toHaveURL(/\/capacity\?range=30d$/);
  await expect(page.getByTestId("capacity-range")).toContainText("History of the last 30d");
  await expect(seeded.filter({ hasText: "CPU" })).toContainText("not enough data");
  // A link to another time page keeps the range.
  await hydrated(page);
  await expect(page.locator('a[href^="/hosts"]').first()).toHaveAttribute("href", /range=30d/);
});
