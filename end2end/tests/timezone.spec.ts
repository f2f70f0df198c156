import { test, expect } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// Times are shown in the browser's own zone. The browser here is in India (UTC+5:30, no daylight
// saving), whatever the machine running the test is set to.
test.use({ timezoneId: "Asia/Kolkata" });

/** `2026-12-01 15:30:00 UTC+5:30` for an instant, as the pages write it in Kolkata. */
function kolkata(t: Date, seconds = true): string {
  const local = new Date(t.getTime() + 330 * 60_000).toISOString(); // 2026-12-01T15:30:00.000Z
  const text = `${local.slice(0, 10)} ${local.slice(11, seconds ? 19 : 16)}`;
  return seconds ? `${text} UTC+5:30` : text;
}

test("times on the pages and the custom range are in the browser's zone", async ({ page, request, baseURL }) => {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const tok = await request.post("/api/v1/tokens", {
    data: { name: `e2e-tz-${Date.now()}`, scope: "ingest" },
    headers: { origin: baseURL! },
  });
  expect(tok.status()).toBe(201);
  const token = (await tok.json()).token as string;
  // A line at a whole second twenty minutes ago, with a message no other test writes.
  const at = new Date(Math.floor((Date.now() - 20 * 60_000) / 1000) * 1000);
  const marker = `zone-check-${Date.now()}`;
  const res = await request.post("/api/v1/ingest/logs?service=e2e-tz", {
    data: JSON.stringify({ timestamp: at.toISOString(), level: "INFO", message: marker }),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
  });
  expect(res.status()).toBe(200);

  // The sign-in page tells the server the zone; every page after it shows times in it.
  await signIn(page, admin, `/logs?q=${marker}&range=1h`);
  await expect(page).toHaveURL(/\/logs\?/);
  const row = page.getByTestId("log-line");
  await expect(row).toHaveCount(1);
  await expect(row).toContainText(kolkata(at));

  // A custom range typed in local wall-clock time means that time here, not in UTC: a window of
  // ten minutes around the line, read as UTC, would be five and a half hours off.
  await page.goto("/capacity");
  await hydrated(page);
  await page.locator("details.custom-range summary").click();
  const from = new Date(at.getTime() - 5 * 60_000);
  const to = new Date(at.getTime() + 5 * 60_000);
  await page.getByLabel("From").fill(kolkata(from, false).replace(" ", "T"));
  await page.getByLabel("To (empty: now)").fill(kolkata(to, false).replace(" ", "T"));
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/from=/);
  const range = page.getByTestId("capacity-range");
  await expect(range).toContainText(`History from ${kolkata(new Date(Math.floor(from.getTime() / 60_000) * 60_000))}`);
  await expect(range).toContainText(`to ${kolkata(new Date(Math.floor(to.getTime() / 60_000) * 60_000))}`);
});
