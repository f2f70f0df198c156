import { test, expect, APIRequestContext } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// Grouped notifications and the public status page, seeded here: a channel of this test's own
// (the default 30 s group wait) and two rules firing on a host of its own. The Alerts page's
// Notifications shows both alerts waiting for the same message, and why; a check marked public
// shows on /status, which answers without a session and names no URL or host.

async function seed(request: APIRequestContext, baseURL: string, tag: string) {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const headers = { origin: baseURL };
  const channel = await request.post("/api/v1/alerts/channels", {
    data: { name: `${tag}-hook`, kind: "webhook", url: "http://127.0.0.1:9/hook" },
    headers,
  });
  expect(channel.status(), await channel.text()).toBe(201);
  for (const [name, metric] of [[`${tag}-cpu`, "cpu_usage_percent"], [`${tag}-mem`, "memory_used_percent"]]) {
    const rule = await request.post("/api/v1/alerts/rules", {
      data: { name, kind: "metric", host: tag, metric, threshold: 90, notify: [`${tag}-hook`] },
      headers,
    });
    expect(rule.status(), await rule.text()).toBe(201);
  }
  const check = await request.post("/api/v1/checks", {
    data: { name: `${tag}-internal`, url: "http://127.0.0.1:9/secret-path", host: tag, public: true, public_name: `Shop ${tag}` },
    headers,
  });
  expect(check.status(), await check.text()).toBe(201);
  const tok = await request.post("/api/v1/tokens", { data: { name: `${tag}-token`, scope: "ingest" }, headers });
  expect(tok.status()).toBe(201);
  const auth = { authorization: `Bearer ${(await tok.json()).token}` };
  const ts = new Date().toISOString();
  const samples = [
    { metric: "cpu_usage_percent", ts, value: 97 },
    { metric: "memory_used_percent", ts, value: 95 },
  ];
  const ingest = await request.post("/api/v1/ingest/metrics", { data: { host: tag, samples }, headers: auth });
  expect(ingest.status(), await ingest.text()).toBe(200);
}

for (const width of [1366, 390]) {
  test(`alerts firing together wait for one message, and the status page shows what is public (${width} px)`, async ({ page, request, baseURL }) => {
    test.setTimeout(60_000);
    const tag = `e2e-ntf-${width}-${Date.now()}`;
    await seed(request, baseURL!, tag);
    // The evaluator runs every 2 s here; the channel's group wait is 30 s.
    await expect.poll(async () => {
      const log = await (await request.get("/api/v1/alerts/notifications")).json();
      return log.filter((l: { channel: string }) => l.channel === `${tag}-hook`).length;
    }, { timeout: 20_000 }).toBe(2);

    await page.setViewportSize({ width, height: 900 });
    await signIn(page, admin, "/alerts");
    await hydrated(page);
    const rows = page.getByTestId("notification-row").filter({ hasText: `${tag}-hook` });
    await expect(rows).toHaveCount(2);
    for (const rule of [`${tag}-cpu`, `${tag}-mem`]) {
      const row = rows.filter({ hasText: rule });
      await expect(row.getByTestId("notification-outcome")).toHaveText(/waiting|sent|sending|failed/);
    }
    await expect(rows.first()).toContainText(/grouping: waits 30 s|in one message with 1 other alert/);
    await expect(page.getByTestId("channel-grouping").first()).toContainText("groups");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);

    // The status page, signed out.
    const anonymous = await page.context().browser()!.newContext({ viewport: { width, height: 900 } });
    const pub = await anonymous.newPage();
    await pub.goto(`${baseURL}/status`);
    await expect(pub).toHaveURL(/\/status$/);
    const card = pub.getByTestId("status-check").filter({ hasText: `Shop ${tag}` });
    await expect(card).toBeVisible();
    await expect(card.locator(".bar i")).toHaveCount(90);
    const html = await pub.content();
    for (const secret of ["secret-path", `${tag}-internal`, "127.0.0.1"]) {
      expect(html).not.toContain(secret);
    }
    const pubOverflow = await pub.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(pubOverflow).toBeLessThanOrEqual(0);
    await anonymous.close();
  });
}
