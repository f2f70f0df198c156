import { test, expect, APIRequestContext } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// An incident seeded here: a rule on a host of this test's own, a hot CPU sample, and a deploy
// annotated by a script's token. The alert opens (or joins) an incident; its page shows the
// timeline with the deploy, the host's chart with the start marked, and takes an acknowledgement
// and a note, at desktop and phone width.

async function seed(request: APIRequestContext, baseURL: string, host: string) {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
  const origin = { origin: baseURL };
  const rule = await request.post("/api/v1/alerts/rules", {
    data: { name: `${host}-hot`, kind: "metric", host, metric: "cpu_usage_percent", threshold: 90 },
    headers: origin,
  });
  expect(rule.status(), await rule.text()).toBe(201);
  const tok = await request.post("/api/v1/tokens", { data: { name: `${host}-token`, scope: "ingest" }, headers: origin });
  expect(tok.status()).toBe(201);
  const token = (await tok.json()).token as string;
  const auth = { authorization: `Bearer ${token}` };
  const now = Date.now();
  const samples = [0, 1, 2, 3].map((m) => ({ metric: "cpu_usage_percent", ts: new Date(now - m * 30_000).toISOString(), value: 97 }));
  const ingest = await request.post("/api/v1/ingest/metrics", { data: { host, samples }, headers: auth });
  expect(ingest.status(), await ingest.text()).toBe(200);
  const note = await request.post("/api/v1/annotations", {
    data: { text: `${host} deploy 1.4.2`, host, tags: ["deploy"], ts: new Date(now - 60_000).toISOString() },
    headers: auth,
  });
  expect(note.status(), await note.text()).toBe(201);
  // The evaluator runs every 2 s here: wait for an open incident holding this host.
  let id = 0;
  await expect.poll(async () => {
    const list = await (await request.get("/api/v1/incidents?status=open")).json();
    id = list.find((i: { hosts: string[] }) => i.hosts.includes(host))?.id ?? 0;
    return id;
  }, { timeout: 20_000 }).toBeGreaterThan(0);
  return id;
}

for (const width of [1366, 390]) {
  test(`an incident's page tells its story and takes an acknowledgement and a note (${width} px)`, async ({ page, request, baseURL }) => {
    test.setTimeout(60_000);
    const host = `e2e-inc-${width}-${Date.now()}`;
    const id = await seed(request, baseURL!, host);
    await page.setViewportSize({ width, height: 900 });
    await signIn(page, admin, "/incidents");
    await expect(page).toHaveURL(/\/incidents$/);
    const row = page.getByTestId("incident-row").filter({ hasText: host });
    await expect(row).toBeVisible();
    // The Overview opens with it too.
    await page.goto("/");
    await expect(page.getByTestId("overview-incidents")).toContainText("open incident");

    await page.goto(`/incidents/${id}`);
    await hydrated(page);
    const timeline = page.getByTestId("incident-timeline");
    await expect(timeline.locator('[data-kind="alert_firing"]').filter({ hasText: `${host}-hot` })).toBeVisible();
    await expect(timeline.locator('[data-kind="annotation"]').filter({ hasText: `${host} deploy 1.4.2` })).toBeVisible();
    await expect(page.getByTestId("incident-context")).toBeVisible();
    // The host's CPU chart over the window, the incident's start and the deploy marked on it.
    const cpu = page.getByTestId(`chart-${host}:cpu`);
    await expect(cpu).toBeVisible();
    await expect(cpu.getByTestId("chart-mark").filter({ hasText: "incident start" })).toHaveCount(1);
    await expect(cpu.getByTestId("chart-mark").filter({ hasText: "deploy 1.4.2" })).toHaveCount(1);
    await expect(page.getByTestId("postmortem")).toHaveAttribute("href", `/api/v1/incidents/${id}/postmortem.md`);

    // Acknowledge (unless another width's run already did: they may share an incident).
    const ack = page.getByRole("button", { name: "Acknowledge" });
    if (await ack.count()) {
      await ack.click();
    }
    await expect(page.getByTestId("incident-acked")).toContainText(`by ${admin.user}`);

    const text = `looked at ${host}`;
    await page.getByTestId("note-form").getByLabel("Note").fill(text);
    await page.getByRole("button", { name: "Add note" }).click();
    await expect(timeline.locator('[data-kind="note"]').filter({ hasText: text })).toBeVisible();

    // Nothing wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);

    // "Mute 1 h" on the firing alert opens a maintenance window over it: still shown, marked,
    // listed on the Alerts page and announced on the Overview.
    await page.goto("/alerts");
    await hydrated(page);
    const alertRow = page.getByTestId("active-alert").filter({ hasText: host });
    await alertRow.getByRole("button", { name: "Mute 1 h" }).click();
    await expect(page.getByTestId("active-alert").filter({ hasText: host }).getByTestId("in-maintenance")).toBeVisible();
    await expect(page.getByTestId("maintenance-row").filter({ hasText: `mute ${host}-hot for 60 min` })).toContainText("in force");
    const windows = await (await request.get("/api/v1/maintenance")).json();
    const muted = windows.find((w: { name: string }) => w.name === `mute ${host}-hot for 60 min`);
    expect(muted.rules).toEqual([`${host}-hot`]);
    expect(muted.host).toBe(host);
    await page.goto("/");
    await expect(page.getByTestId("maintenance-active")).toContainText(`mute ${host}-hot`);

    // The post-mortem holds the note and the deploy.
    const md = await (await request.get(`/api/v1/incidents/${id}/postmortem.md`)).text();
    expect(md).toContain(text);
    expect(md).toContain("deploy 1.4.2");
  });
}
