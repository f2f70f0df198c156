import { test, expect } from "@playwright/test";
import { admin, viewer, signIn, hydrated } from "./helpers";

test("assets come compressed with cache validators", async ({ request }) => {
  for (const path of ["/pkg/opsdeck.wasm", "/pkg/opsdeck.js", "/pkg/opsdeck.css"]) {
    const res = await request.get(path, { headers: { "accept-encoding": "br, gzip" } });
    expect(res.status(), path).toBe(200);
    expect(res.headers()["content-encoding"], path).toBe("br");
    expect(res.headers()["etag"], path).toBeTruthy();
  }
});

test("a wrong password shows an error and keeps you out", async ({ page }) => {
  await signIn(page, { user: viewer.user, password: "definitely-wrong" });
  await expect(page.getByTestId("login-error")).toHaveText("Wrong user name or password.");
  await expect(page).toHaveURL(/\/login/);
});

test("signing in lands where you were going", async ({ page }) => {
  await signIn(page, admin, "/admin/audit");
  await expect(page).toHaveURL(/\/admin\/audit$/);
  await expect(page.getByTestId("audit-table")).toContainText("auth.login");
  await hydrated(page);
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("health-database")).toContainText("Reachable");
  await expect(page.getByTestId("whoami")).toContainText("admin");
});

test("an admin adds a user from the Users page", async ({ page }) => {
  await signIn(page, admin, "/admin/users");
  await hydrated(page);
  const form = page.getByTestId("create-user");
  const name = `e2e${Date.now() % 100000}`;
  await form.getByLabel("User name").fill(name);
  await form.getByLabel("Role").selectOption("operator");
  await form.getByLabel("Password").fill("a-long-enough-password");
  await form.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByTestId(`user-${name}`)).toContainText("active");
});

test("a viewer cannot reach Admin", async ({ page }) => {
  await signIn(page, viewer);
  await expect(page.getByTestId("whoami")).toContainText("viewer");
  await expect(page.getByRole("link", { name: "Admin" })).toHaveCount(0);
  const res = await page.goto("/admin/users");
  expect(res?.status()).toBe(403);
  await expect(page.getByTestId("error")).toContainText("Not allowed");
});

test("signing out ends the session on the server", async ({ page, context }) => {
  await signIn(page, viewer);
  await expect(page.getByTestId("whoami")).toBeVisible();
  await hydrated(page);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "opsdeck_session");
  expect(session?.httpOnly).toBe(true);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login/);
  // Replaying the old cookie no longer works.
  await context.addCookies([session!]);
  const res = await page.request.get("/api/v1/auth/me");
  expect(res.status()).toBe(401);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=\//);
});

test("an admin creates an ingest token once and can revoke it", async ({ page }) => {
  await signIn(page, admin, "/admin/tokens");
  await hydrated(page);
  const form = page.getByTestId("create-token");
  await form.getByLabel("Name").fill("e2e-agents");
  await form.getByRole("button", { name: "Create token" }).click();
  await expect(page.getByTestId("new-token")).toContainText("odk_");
  await page.getByRole("link", { name: "Done: show it in the list" }).click();
  const row = page.getByTestId("token-e2e-agents");
  await expect(row).toContainText("active");
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  await row.locator("summary", { hasText: "Revoke" }).click();
  await row.getByRole("button", { name: "Yes, revoke" }).click();
  await expect(page.getByTestId("token-e2e-agents")).toContainText("revoked");
});
