import { test, expect } from "@playwright/test";
import { admin, signIn } from "./helpers";

// An operator watches the Opsdeck server process itself (with the port it listens on) and
// scrapes its own /metrics; the Services page then shows both up, with data (and the scrape
// leaves out the series it would only copy).
test("the Services page shows a watched process and a scrape target with data", async ({ page, request, baseURL }) => {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const origin = { origin: baseURL! };
  const port = Number(new URL(baseURL!).port);
  const proc = await request.post("/api/v1/processes", {
    data: { name: "opsdeck", pattern: "opsdeck serve", port },
    headers: origin,
  });
  expect(proc.status()).toBe(201);
  const tok = await request.post("/api/v1/tokens", {
    data: { name: `e2e-scrape-${Date.now()}`, scope: "metrics" },
    headers: origin,
  });
  expect(tok.status()).toBe(201);
  const target = await request.post("/api/v1/scrape-targets", {
    data: { name: "self", url: `${baseURL}/metrics`, interval_seconds: 2, timeout_seconds: 2, bearer_token: (await tok.json()).token },
    headers: origin,
  });
  expect(target.status()).toBe(201);

  // The collector runs every 2 s in the test server, the scraper every 2 s.
  await expect.poll(async () => {
    const list = await (await request.get("/api/v1/processes")).json();
    return list.find((p: { name: string }) => p.name === "opsdeck")?.state;
  }, { timeout: 30_000 }).toBe("up");
  await expect.poll(async () => {
    const list = await (await request.get("/api/v1/scrape-targets")).json();
    return list.find((t: { name: string }) => t.name === "self")?.state;
  }, { timeout: 30_000 }).toBe("up");

  await signIn(page, admin, "/services");
  await expect(page).toHaveURL(/\/services$/);
  const proc_row = page.getByTestId("process-row").filter({ hasText: "opsdeck" });
  await expect(proc_row.getByTestId("service-state")).toHaveText("up");
  await expect(proc_row).toContainText(`${port} listening`);
  await expect(proc_row).toContainText(/\d+(\.\d)? (KiB|MiB|GiB)/);
  const target_row = page.getByTestId("target-row").filter({ hasText: "self" });
  await expect(target_row.getByTestId("service-state")).toHaveText("up");
  await expect(target_row).toContainText(/\d+ ms/);
  // Its own /metrics re-exports the series stored in this database: those are left out, not
  // stored twice, and the row says how many.
  await expect(target_row.getByTestId("target-skipped")).toContainText(/^\d+ series left out: stored here already$/);

  // The process page: facts and charts.
  await proc_row.getByRole("link", { name: "opsdeck" }).click();
  await expect(page).toHaveURL(/\/services\/process\/\d+$/);
  await expect(page.getByTestId("service-facts")).toContainText("opsdeck serve");
  await expect(page.getByTestId("chart-rss").locator("svg")).toBeVisible();
  // Seconds of data are too few for a trend: the page says so rather than inventing one.
  await expect(page.getByTestId("rss-trend")).toContainText(/RSS (grows|shrinks) .*\/day|not enough data yet/);
  // It opens on the last 24 h and has the hosts' time picker; the window is in the address.
  await expect(page.getByTestId("detail-range")).toHaveText("Showing the last 24h");
  await page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "6h" }).click();
  await expect(page).toHaveURL(/\/services\/process\/\d+\?range=6h$/);
  await expect(page.getByTestId("detail-range")).toHaveText("Showing the last 6h");
  // The Up chart reads up/down, not 0.2, 0.4 …
  await expect(page.getByTestId("chart-up").locator("svg")).toContainText("up");
  await expect(page.getByTestId("chart-up").locator("svg")).not.toContainText("0.4");
});

// Name fields carry a pattern the browser can compile (with the `v` flag that browsers use for
// `pattern`, an unescaped `-` at the end of a class is an error and the check silently never
// runs): a bad name is caught before the form is sent.
test("name fields check their pattern in the browser", async ({ page }) => {
  await signIn(page, admin, "/services");
  await expect(page).toHaveURL(/\/services$/);
  const name = page.getByTestId("add-target").locator("input[name=name]");
  await name.evaluate((el: HTMLInputElement) => { el.value = "bad name!"; });
  expect(await name.evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
  await name.evaluate((el: HTMLInputElement) => { el.value = "api-1.prod_2"; });
  expect(await name.evaluate((el: HTMLInputElement) => el.checkValidity())).toBe(true);
});
