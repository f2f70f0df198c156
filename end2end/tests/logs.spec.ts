import { test, expect } from "@playwright/test";
import { admin, signIn } from "./helpers";

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
  await expect(page.getByTestId("slow-requests")).toContainText("/api/v1/chat");
  await expect(page.getByTestId("log-histogram").locator("rect").first()).toBeVisible();
  await expect(page.getByTestId("log-facets")).toContainText("error 5");

  // A bad query says what is wrong.
  await page.goto("/logs?q=" + encodeURIComponent('"unclosed'));
  await expect(page.getByTestId("error")).toContainText("unclosed quote");
});
