import { test, expect } from "@playwright/test";
import { admin, signIn } from "./helpers";

// A rule that fires at once on the test host's CPU (always >= 0): within a few evaluation
// rounds (OPSDECK_ALERT_INTERVAL=2s here) the Overview says something is wrong and names it,
// and the Alerts page lists it as firing, with an acknowledge button that works.
test("a firing alert shows on the Overview and can be acknowledged", async ({ page }) => {
  await signIn(page, admin, "/");
  await expect(page).toHaveURL(/\/$/);
  const res = await page.request.post("/api/v1/alerts/rules", {
    data: { name: "e2e CPU watch", kind: "metric", host: "e2e-host", metric: "cpu_usage_percent", op: ">=", threshold: 0 },
  });
  expect(res.status()).toBe(201);
  const wrong = page.getByTestId("anything-wrong");
  await expect.poll(async () => {
    await page.reload();
    return (await wrong.textContent()) ?? "";
  }, { timeout: 30_000 }).toContain("e2e CPU watch");
  await expect(page.getByTestId("overview-alert").filter({ hasText: "e2e CPU watch" })).toContainText("cpu_usage_percent");

  await page.goto("/alerts");
  const row = page.getByTestId("active-alert").filter({ hasText: "e2e CPU watch" });
  await expect(row).toContainText("firing");
  await row.getByRole("button", { name: "Acknowledge" }).click();
  await expect(row).toContainText("acked by admin");

  // Deleting the rule clears the Overview again (other default rules may still fire on a
  // busy CI machine, so only this one is checked).
  const rules = await (await page.request.get("/api/v1/alerts/rules")).json();
  const id = rules.find((r: any) => r.name === "e2e CPU watch").id;
  expect((await page.request.delete(`/api/v1/alerts/rules/${id}`)).status()).toBe(204);
  await page.goto("/");
  await expect(page.getByTestId("anything-wrong")).not.toContainText("e2e CPU watch");
});

// Opsdeck checks its own /api/v1/health from the first start.
test("the Health checks page shows Opsdeck's own check up with its uptime", async ({ page }) => {
  await signIn(page, admin, "/checks");
  const card = page.getByTestId("check-card").filter({ hasText: "opsdeck" });
  await expect(card).toBeVisible();
  await expect.poll(async () => {
    await page.reload();
    return (await card.getByTestId("alert-status").textContent()) ?? "";
  }, { timeout: 30_000 }).toBe("up");
  await expect(card.getByTestId("uptime-24h")).toContainText("%");
  // The latency charts take the time picker; the window is in the address.
  await expect(page.getByTestId("checks-range")).toHaveText("Latency over the last 24h");
  await page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "6h" }).click();
  await expect(page).toHaveURL(/\/checks\?range=6h$/);
  await expect(page.getByTestId("checks-range")).toHaveText("Latency over the last 6h");
});

// On a phone the answer is the first thing on the Overview, and nothing scrolls sideways.
test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 } });
  test("the Overview's alert panel is on screen without sideways scrolling", async ({ page }) => {
    await signIn(page, admin, "/");
    await expect(page).toHaveURL(/\/$/);
    const panel = page.getByTestId("anything-wrong");
    await expect(panel).toBeInViewport();
    const box = await panel.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  });
});

// Edit and pause of a rule on the Alerts page, at both widths: the Edit form opens filled with
// the rule's values, a changed threshold is saved (and only it: the severity set through the API
// stays), Turn off pauses it and Turn on resumes it.
for (const width of [1366, 390]) {
  test(`a rule is edited and paused from the Alerts page (${width} px)`, async ({ page }) => {
    await page.setViewportSize({ width, height: 900 });
    await signIn(page, admin, "/alerts");
    await expect(page).toHaveURL(/\/alerts$/);
    const name = `e2e edit ${width} ${Date.now()}`;
    const res = await page.request.post("/api/v1/alerts/rules", {
      data: { name, kind: "metric", host: "e2e-nowhere", metric: "cpu_usage_percent", op: ">", threshold: 90, severity: "critical" },
    });
    expect(res.status()).toBe(201);
    const id = (await res.json()).id;
    const rule = async () => (await (await page.request.get("/api/v1/alerts/rules")).json()).find((r: any) => r.id === id);

    await page.reload();
    const row = page.getByTestId("rule-row").filter({ hasText: name });
    await row.locator("summary", { hasText: "Edit" }).click();
    const form = row.getByTestId("rule-edit");
    await expect(form.getByLabel("Threshold", { exact: true })).toHaveValue("90");
    await expect(form.getByLabel("Hosts (* for all)")).toHaveValue("e2e-nowhere");
    await form.getByLabel("Threshold", { exact: true }).fill("95");
    await form.getByRole("button", { name: "Save" }).click();
    await expect(page.getByTestId("rule-row").filter({ hasText: name })).toContainText("> 95");
    const saved = await rule();
    expect(saved.threshold).toBe(95);
    expect(saved.severity).toBe("critical");

    await page.getByTestId("rule-row").filter({ hasText: name }).getByRole("button", { name: "Turn off" }).click();
    await expect(page.getByTestId("rule-row").filter({ hasText: name }).getByRole("button", { name: "Turn on" })).toBeVisible();
    expect((await rule()).enabled).toBe(false);
    await page.getByTestId("rule-row").filter({ hasText: name }).getByRole("button", { name: "Turn on" }).click();
    await expect(page.getByTestId("rule-row").filter({ hasText: name }).getByRole("button", { name: "Turn off" })).toBeVisible();
    expect((await rule()).enabled).toBe(true);
    expect((await page.request.delete(`/api/v1/alerts/rules/${id}`)).status()).toBe(204);
  });
}

// A check is edited from its card: the form keeps its URL out of sight (it may hold a token)
// and changes only what is typed.
test("a health check is edited from its card", async ({ page }) => {
  await signIn(page, admin, "/checks");
  await expect(page).toHaveURL(/\/checks$/);
  const name = `e2e-edit-check-${Date.now()}`;
  const res = await page.request.post("/api/v1/checks", {
    data: { name, url: "http://127.0.0.1:9/health?token=e2e-sekret", interval_seconds: 30 },
  });
  expect(res.status()).toBe(201);
  await page.reload();
  const card = page.getByTestId("check-card").filter({ hasText: name });
  await card.locator("summary", { hasText: "Edit" }).click();
  const form = card.getByTestId("check-edit");
  await expect(form.getByLabel("Every (s)")).toHaveValue("30");
  expect(await form.innerHTML()).not.toContain("e2e-sekret");
  await form.getByLabel("Every (s)").fill("120");
  await form.getByLabel("Body must contain (empty: anything)").fill("ok");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("check-card").filter({ hasText: name })).toContainText("120 s, timeout 5 s");
  const check = (await (await page.request.get("/api/v1/checks")).json()).find((c: any) => c.name === name);
  expect(check.interval_seconds).toBe(120);
  expect(check.expected_body).toBe("ok");
  expect(check.url).toContain("127.0.0.1:9");
  expect((await page.request.delete(`/api/v1/checks/${check.id}`)).status()).toBe(204);
});
