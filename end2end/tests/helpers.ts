import { expect, Page } from "@playwright/test";

export const admin = { user: "admin", password: process.env.OPSDECK_E2E_ADMIN_PASSWORD ?? "" };
export const viewer = { user: "viewer", password: process.env.OPSDECK_E2E_VIEWER_PASSWORD ?? "" };

/** Waits until the WASM has hydrated the page (the hydration script marks nothing, so we wait
 * for the module to have run: leptos removes no markers, but `window.__opsdeck_hydrated` is set
 * by the app after hydration). */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__opsdeck_hydrated === true, null, { timeout: 15_000 });
}

export async function signIn(page: Page, who: { user: string; password: string }, path = "/") {
  await page.goto(path);
  await expect(page).toHaveURL(/\/login/);
  await hydrated(page);
  await page.getByLabel("User name").fill(who.user);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}
