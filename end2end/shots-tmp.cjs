const { chromium } = require("@playwright/test");
(async () => {
  const [base, user, password, out, ...paths] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless=new", "--no-sandbox", "--disable-gpu"] });
  for (const w of [1366, 390]) {
    const page = await browser.newPage({ viewport: { width: w, height: w > 500 ? 900 : 844 } });
    await page.goto(`${base}/login`);
    await page.waitForTimeout(500);
    await page.getByLabel("User name").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((u) => !u.pathname.startsWith("/login"));
    for (const p of paths) {
      await page.goto(`${base}${p}`);
      await page.waitForTimeout(1200);
      const name = p.replace(/[^a-z0-9]+/gi, "_") || "root";
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      console.log(w, p, "overflow", overflow);
      await page.screenshot({ path: `${out}/${w}${name}.png`, fullPage: true });
    }
    await page.close();
  }
  await browser.close();
})();
