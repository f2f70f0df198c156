// Takes the README's screenshots from a running Opsdeck: node shot.cjs BASE_URL USER PASSWORD PATH OUT
const { chromium } = require("@playwright/test");
(async () => {
  const [base, user, password, path, out] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${base}/login`);
  await page.waitForTimeout(500);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
  await page.goto(`${base}${path}`);
  await page.waitForTimeout(1000);
  await page.screenshot({ path: out, fullPage: false });
  await browser.close();
})();
