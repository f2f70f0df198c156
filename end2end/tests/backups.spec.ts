import { test, expect } from "@playwright/test";
import { admin, viewer, signIn } from "./helpers";

// scripts/test.sh serves Opsdeck on the database `opsdeck_e2e`, which is its own backup target.
test("an admin backs up Opsdeck's database and restores it into a new database", async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page, admin, "/backups");
  await expect(page).toHaveURL(/\/backups$/);
  const card = page.getByTestId("target-opsdeck");
  await expect(card).toBeVisible();
  await card.getByTestId("back-up-now").click();

  // The run's page refreshes itself until the backup is done and checked.
  await expect(page).toHaveURL(/\/backups\/runs\/\d+$/);
  await expect(page.getByTestId("run-status")).toHaveText("succeeded", { timeout: 30_000 });
  await expect(page.getByTestId("verify-detail")).toContainText("checksum matches", { timeout: 10_000 });
  await expect(page.getByTestId("manifest")).toContainText("public.users");

  // A test restore says it is running while it runs, then the page shows how it went.
  await expect(page.getByTestId("test-restore-detail")).toHaveText("not yet");
  await page.getByTestId("test-restore").click();
  await expect(page.getByTestId("form-busy")).toContainText("Test restore running");
  await expect(page.getByTestId("test-restore-detail")).toContainText("equal to the manifest", { timeout: 60_000 });

  // Restore it into a new database: confirm with the database's name and the password.
  const name = `opsdeck_e2e_restored_${Date.now()}`;
  const form = page.getByTestId("restore-form");
  await form.getByLabel("Mode").selectOption("new_database");
  await form.getByLabel("New database name").fill(name);
  await form.getByLabel(/to confirm/).fill("opsdeck_e2e");
  await form.getByLabel("Your password").fill(admin.password);
  await form.getByTestId("restore-submit").click();

  await expect(page).toHaveURL(/\/backups\/restores\/\d+$/);
  await expect(page.getByTestId("restore-detail")).toContainText("equal to the manifest", { timeout: 60_000 });
  await expect(page.getByTestId("restore-detail")).toContainText(name);
  await expect(page.getByTestId("run-status")).toHaveText("succeeded");

  // The history lists the run, and the restore with where it went.
  await page.goto("/backups?target=opsdeck&status=succeeded");
  await expect(page.getByTestId("runs-table")).toContainText("opsdeck");
  const restore = page.getByTestId("restore-row").filter({ hasText: name });
  await expect(restore).toContainText("succeeded");
  await expect(restore).toContainText(admin.user);
});

test("a wrong password cannot restore, and says so", async ({ page }) => {
  await signIn(page, admin, "/backups");
  const card = page.getByTestId("target-opsdeck");
  await expect(card).toBeVisible();
  // Use the newest successful backup (the first test made one; make sure there is one).
  await page.goto("/backups?target=opsdeck&status=succeeded");
  let rows = page.getByTestId("runs-table").locator("tbody tr");
  if ((await rows.count()) === 0) {
    await page.goto("/backups");
    await card.getByTestId("back-up-now").click();
    await expect(page.getByTestId("run-status")).toHaveText("succeeded", { timeout: 30_000 });
  } else {
    await rows.first().getByRole("link").first().click();
  }
  await expect(page).toHaveURL(/\/backups\/runs\/\d+$/);
  const form = page.getByTestId("restore-form");
  await form.getByLabel(/to confirm/).fill("opsdeck_e2e");
  await form.getByLabel("Your password").fill("certainly-not-it");
  await form.getByTestId("restore-submit").click();
  await expect(page.getByTestId("error")).toContainText("password is wrong");
  await expect(page).toHaveURL(/\/backups\/runs\/\d+/);
});

test("viewers see backups but no buttons", async ({ page }) => {
  await signIn(page, viewer, "/backups");
  await expect(page).toHaveURL(/\/backups$/);
  await expect(page.getByTestId("target-opsdeck")).toBeVisible();
  await expect(page.getByTestId("back-up-now")).toHaveCount(0);
  await expect(page.getByTestId("add-target")).toHaveCount(0);
});
