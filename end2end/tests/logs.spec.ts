import { test, expect } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// Lines arrive through the ingest API (as an agent or a script sends them), then a user searches.
test("a search shows the matching lines and the analytics show the figures", async ({ page, request, baseURL }) => {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const tok = await request.post("/api/v1/tokens", {
    data: { name: `e2e-logs-${Date.now()}`, scope: "ingest" },
    headers: { origin: baseURL! },
  });
  expect(tok.status()).toBe(201);
  const token = (await tok.json()).token as string;
  const now = Date.now();
  const lines = [];
  for (let i = 0; i < 40; i++) {
    const ts = new Date(now - (40 - i) * 30_000).toISOString();
    const error = i % 8 === 0;
    lines.push(JSON.stringify({
      timestamp: ts,
      level: error ? "ERROR" : "INFO",
      message: error ? `Model API error ${i}` : "Request started",
      context: { execution_time: error ? 6.5 : 0.2, url: "/api/v1/chat", status: error ? 502 : 200 },
    }));
  }
  const res = await request.post("/api/v1/ingest/logs?service=e2e-api", {
    data: lines.join("\n"),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
  });
  expect(res.status()).toBe(200);
  expect((await res.json()).accepted).toBe(40);

  await signIn(page, admin, "/logs");
  await expect(page).toHaveURL(/\/logs$/);
  await page.getByLabel("Query").fill("level:error service:e2e-api");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/q=level%3Aerror/);
  const rows = page.getByTestId("log-line");
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toContainText("Model API error 32");
  // A row opens to all its fields.
  await rows.first().locator("summary").click();
  await expect(rows.first()).toContainText("context.url");

  // Analytics for the service: 5 errors out of 40 lines, slow requests listed.
  await page.goto("/logs?service=e2e-api&range=24h");
  await expect(page.getByTestId("stat-total")).toHaveText("40");
  await expect(page.getByTestId("stat-errors")).toHaveText("5");
  await expect(page.getByTestId("stat-error-rate")).toHaveText("12.50 %");
  await expect(page.getByTestId("top-errors")).toContainText("Model API error <n>");
  // Never logged in the week before: listed as new, with its count.
  await expect(page.getByTestId("new-errors")).toContainText("Model API error <n> (e2e-api)");
  await expect(page.getByTestId("new-errors")).toContainText("5");
  await expect(page.getByTestId("slow-requests")).toContainText("/api/v1/chat");
  await expect(page.getByTestId("log-histogram").locator("rect").first()).toBeVisible();
  await expect(page.getByTestId("log-facets")).toContainText("error 5");

  // The analytics follow the query: with level:error every card counts the 5 errors only.
  await page.goto("/logs?service=e2e-api&range=24h&q=" + encodeURIComponent("level:error"));
  await expect(page.getByTestId("stat-total")).toHaveText("5");
  await expect(page.getByTestId("stat-errors")).toHaveText("5");
  await expect(page.getByTestId("stat-error-rate")).toHaveText("100.00 %");
  await expect(page.getByTestId("stat-latency")).toContainText("6500 ms");
  // Lines come before the analytics, and show their status and time.
  const linesTop = (await page.getByTestId("log-lines").boundingBox())!.y;
  const statsTop = (await page.getByTestId("log-stats").boundingBox())!.y;
  expect(linesTop).toBeLessThan(statsTop);
  await expect(page.getByTestId("log-line").first().getByTestId("line-status")).toHaveText("502");
  // A row of the analytics adds its filter to the query.
  await page.getByTestId("status-classes").getByRole("link", { name: "5xx" }).click();
  await expect(page).toHaveURL(/status%3A5xx/);
  await expect(page.getByTestId("stat-total")).toHaveText("5");

  // The timeline: every bucket on a time axis with round tick times; a bar zooms in, and the
  // range control then shows the window with a way back out.
  await page.goto("/logs?service=e2e-api&range=6h");
  await hydrated(page);
  const bars = page.getByTestId("log-histogram").locator("rect");
  expect(await bars.count()).toBeGreaterThan(20);
  await expect(page.getByTestId("log-histogram").locator(".tick").first()).toHaveText(/^\d\d:\d\d$|^[A-Z][a-z]{2} \d+$/);
  await page.getByTestId("log-histogram").locator("a:has(rect:not(.empty))").last().click();
  await expect(page).toHaveURL(/from=\d+&to=\d+/);
  await expect(page.getByLabel("Range")).toHaveValue("custom");
  await expect(page.getByTestId("zoom-out")).toBeVisible();
  expect(Number(await page.getByTestId("stat-total").textContent())).toBeGreaterThan(0);

  // `/` puts the cursor in the search box.
  await hydrated(page);
  await page.locator("body").click({ position: { x: 5, y: 5 } });
  await page.keyboard.press("/");
  await expect(page.getByLabel("Query")).toBeFocused();

  // A bad query says what is wrong under the search box; the service menu stays.
  await page.goto("/logs?q=" + encodeURIComponent('"unclosed'));
  await expect(page.getByTestId("error")).toContainText("unclosed quote");
  await expect(page.getByLabel("Service").locator("option", { hasText: "e2e-api" })).toHaveCount(1);
});
