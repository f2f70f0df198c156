import { test, expect, APIRequestContext } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// Forms that behave: a refused form keeps what was typed and says why beside it, with no
// `?__err=` in the address; and every kind of item is edited on its own page. Everything judged
// is seeded here.

async function apiSignIn(request: APIRequestContext) {
  const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
  expect(login.ok()).toBeTruthy();
}

for (const width of [1366, 390]) {
  test(`a refused form keeps what was typed (${width} px)`, async ({ page, request }) => {
    await page.setViewportSize({ width, height: 900 });
    const name = `e2e-keep-${width}-${Date.now()}`;
    await signIn(page, admin, "/services");
    await expect(page).toHaveURL(/\/services$/);
    await hydrated(page);
    await page.locator("summary", { hasText: "Watch a process" }).click();
    const form = page.getByTestId("add-process");
    await form.getByLabel("Name", { exact: true }).fill(name);
    await form.getByLabel(/command-line part/).fill("keep-this-pattern");
    await form.getByLabel("Port (optional)").fill("8123");
    await form.getByLabel("Host", { exact: true }).fill("bad host!");
    await form.getByRole("button", { name: "Watch" }).click();

    // The server refuses the host: the message stands under the form, the field is marked,
    // and nothing typed is lost.
    const error = page.getByTestId("form-error");
    await expect(error).toContainText("host");
    await expect(error).not.toContainText("Something went wrong");
    await expect(form.getByLabel("Host", { exact: true })).toHaveAttribute("aria-invalid", "true");
    await expect(form.getByLabel("Name", { exact: true })).toHaveValue(name);
    await expect(form.getByLabel(/command-line part/)).toHaveValue("keep-this-pattern");
    await expect(form.getByLabel("Port (optional)")).toHaveValue("8123");
    expect(page.url()).not.toContain("__err");

    // Mended, it is saved and listed.
    await form.getByLabel("Host", { exact: true }).fill("e2e-seeded");
    await form.getByRole("button", { name: "Watch" }).click();
    await expect(page.getByTestId("process-row").filter({ hasText: name })).toBeVisible();
    await expect(page.getByTestId("form-error")).toHaveCount(0);

    await apiSignIn(request);
    const list = await (await request.get("/api/v1/processes")).json();
    const saved = list.find((p: { name: string }) => p.name === name);
    expect(saved.pattern).toBe("keep-this-pattern");
    expect(saved.port).toBe(8123);
  });
}

test("processes, scrape targets, channels, log sources and backup targets are edited on their pages", async ({ page, request, baseURL }) => {
  test.setTimeout(60_000);
  await apiSignIn(request);
  const origin = { origin: baseURL! };
  const stamp = Date.now();
  const create = async (url: string, data: object) => {
    const res = await request.post(url, { data, headers: origin });
    expect(res.status(), await res.text()).toBe(201);
    return (await res.json()).id as number;
  };
  const find = async (url: string, id: number) =>
    (await (await request.get(url)).json()).find((x: { id: number }) => x.id === id);

  const processId = await create("/api/v1/processes", { name: `e2e-edit-p-${stamp}`, pattern: "no-such-e2e", host: "e2e-seeded" });
  const targetId = await create("/api/v1/scrape-targets", { name: `e2e-edit-t-${stamp}`, url: "http://127.0.0.1:9/metrics", bearer_token: "keep-me-secret" });
  const channelId = await create("/api/v1/alerts/channels", { name: `e2e-edit-c-${stamp}`, kind: "webhook", url: "http://127.0.0.1:9/hook?token=s3cret" });
  const sourceId = await create("/api/v1/logs/sources", { path: `/var/log/opsdeck-e2e-edit-${stamp}.log`, format: "json", service: "e2e-edit" });

  await signIn(page, admin, "/services");
  await expect(page).toHaveURL(/\/services$/);
  await hydrated(page);

  // A watched process: its pattern and port.
  let row = page.getByTestId("process-row").filter({ hasText: `e2e-edit-p-${stamp}` });
  await row.locator("summary", { hasText: "Edit" }).click();
  let form = row.getByTestId("process-edit");
  await expect(form.getByLabel(/command-line part/)).toHaveValue("no-such-e2e");
  await form.getByLabel(/command-line part/).fill("edited-e2e-pattern");
  await form.getByLabel(/Port/).fill("9100");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(row).toContainText("edited-e2e-pattern");
  expect((await find("/api/v1/processes", processId)).port).toBe(9100);

  // A scrape target: its interval; the URL field starts empty and an empty one keeps the URL
  // (and the token).
  row = page.getByTestId("target-row").filter({ hasText: `e2e-edit-t-${stamp}` });
  await row.locator("summary", { hasText: "Edit" }).click();
  form = row.getByTestId("target-edit");
  await expect(form.getByLabel(/New URL/)).toHaveValue("");
  await form.getByLabel("Every (s)").fill("45");
  await form.getByRole("button", { name: "Save" }).click();
  await expect.poll(async () => (await find("/api/v1/scrape-targets", targetId)).interval_seconds).toBe(45);
  const target = await find("/api/v1/scrape-targets", targetId);
  expect(target.url).toBe("http://127.0.0.1:9/metrics");
  expect(target.has_token).toBe(true);

  // A channel: made a default one; its webhook URL (with its token) is never put in the form.
  // (The target's save may still be refreshing the page: navigate again if it interrupts.)
  await expect(async () => {
    await page.goto("/alerts");
  }).toPass();
  await hydrated(page);
  row = page.getByTestId("channel-row").filter({ hasText: `e2e-edit-c-${stamp}` });
  await row.locator("summary", { hasText: "Edit" }).click();
  form = row.getByTestId("channel-edit");
  expect(await form.innerHTML()).not.toContain("s3cret");
  await form.getByLabel(/^Default/).selectOption("true");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("channel-row").filter({ hasText: `e2e-edit-c-${stamp}` }).getByTestId("default-channel")).toBeVisible();
  expect((await find("/api/v1/alerts/channels", channelId)).default).toBe(true);
  await request.delete(`/api/v1/alerts/channels/${channelId}`, { headers: origin });

  // A log source: its service, then paused.
  await page.goto("/admin/log-sources");
  await hydrated(page);
  row = page.getByTestId("log-sources").locator("tr").filter({ hasText: `opsdeck-e2e-edit-${stamp}` });
  await row.locator("summary", { hasText: "Edit" }).click();
  form = row.getByTestId("source-edit");
  await form.getByLabel("Service").fill("e2e-edited");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(row).toContainText("e2e-edited");
  await row.getByRole("button", { name: "Pause" }).click();
  await expect(row.getByTestId("paused")).toBeVisible();
  const source = await find("/api/v1/logs/sources", sourceId);
  expect(source.service).toBe("e2e-edited");
  expect(source.paused).toBe(true);

  // A backup target: its retention, then its schedule paused and resumed.
  await page.goto("/backups");
  await hydrated(page);
  const card = page.getByTestId("target-opsdeck");
  const before = (await (await request.get("/api/v1/backups/targets")).json()).find((t: { name: string }) => t.name === "opsdeck");
  await card.locator("summary", { hasText: "Edit" }).click();
  form = card.getByTestId("backup-target-edit");
  await expect(form.getByLabel(/database URL/)).toHaveCount(0);
  await form.getByLabel("Keep every backup (days)").fill(String(before.keep_days + 5));
  await form.getByRole("button", { name: "Save" }).click();
  await expect(card).toContainText(`${before.keep_days + 5} days`);
  await card.getByRole("button", { name: "Pause schedule" }).click();
  await expect(card.getByTestId("paused")).toBeVisible();
  await card.getByRole("button", { name: "Resume schedule" }).click();
  await expect(card.getByTestId("paused")).toHaveCount(0);
  const restored = await request.patch("/api/v1/backups/targets/opsdeck", { data: { keep_days: before.keep_days }, headers: origin });
  expect(restored.ok()).toBeTruthy();
});
