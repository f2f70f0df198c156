import { test, expect } from "@playwright/test";
import { admin, hydrated, signIn } from "./helpers";

// Pause and resume from the page, and edit over the API: a watched process is paused from its
// row (the badge says so, the API agrees), edited with PATCH (the page shows the new pattern),
// then resumed. Seeded here: nothing depends on what runs on the machine.
for (const width of [1366, 390]) {
  test(`a watched process is paused, edited and resumed (${width} px)`, async ({ page, request, baseURL }) => {
    await page.setViewportSize({ width, height: 900 });
    const login = await request.post("/api/v1/auth/login", { data: { username: admin.user, password: admin.password } });
    expect(login.ok()).toBeTruthy();
    const origin = { origin: baseURL! };
    const name = `e2e-pause-${width}-${Date.now()}`;
    const created = await request.post("/api/v1/processes", {
      data: { name, pattern: "no-such-process-e2e", host: "e2e-seeded" },
      headers: origin,
    });
    expect(created.status()).toBe(201);
    const id = (await created.json()).id;
    const paused = async () => {
      const list = await (await request.get("/api/v1/processes")).json();
      return list.find((p: { id: number }) => p.id === id)?.paused;
    };

    await signIn(page, admin, "/services");
    await expect(page).toHaveURL(/\/services$/);
    await hydrated(page);
    const row = page.getByTestId("process-row").filter({ hasText: name });
    await expect(row.getByTestId("paused")).toHaveCount(0);
    await row.getByRole("button", { name: "Pause" }).click();
    await expect(row.getByTestId("paused")).toHaveText("paused");
    expect(await paused()).toBe(true);

    const edit = await request.patch(`/api/v1/processes/${id}`, {
      data: { pattern: "still-no-such-process" },
      headers: origin,
    });
    expect(edit.status()).toBe(204);
    const bad = await request.patch(`/api/v1/processes/${id}`, { data: { port: "eighty" }, headers: origin });
    expect(bad.status()).toBe(422);
    expect((await bad.json()).error).toContain("port");
    await page.reload();
    await hydrated(page);
    await expect(row).toContainText("still-no-such-process");

    await row.getByRole("button", { name: "Resume" }).click();
    await expect(row.getByTestId("paused")).toHaveCount(0);
    expect(await paused()).toBe(false);
    // Deleting asks first.
    await row.locator("summary", { hasText: "Stop watching" }).click();
    await expect(row.getByTestId("confirm")).toContainText("Its samples stay");
    await row.getByRole("button", { name: "Yes, stop watching" }).click();
    await expect(page.getByTestId("process-row").filter({ hasText: name })).toHaveCount(0);
  });
}
