// The hub service's page as a person sees it: Playwright drives Debian's headless chromium
// through the hub's login form and the service's OAuth, reads the table, sorts it by a click,
// and saves a screenshot. Usage: node browser.js HUB_URL USER PASSWORD SCREENSHOT.png [QUERY]
// Prints {rows, rows_after_click, machine} as JSON.
const { chromium } = require('playwright-core');

async function main() {
  const [hub, user, password, shot, query] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox']
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 600 } });
    await page.goto(`${hub}/hub/login?next=${encodeURIComponent('/services/energy/' + (query ? '?' + query : ''))}`);
    await page.fill('#username_input', user);
    await page.fill('#password_input', password);
    await page.click('#login_submit');
    try {
      await page.waitForSelector('#rows tbody tr', { timeout: 60000 });
    } catch (err) {
      await page.screenshot({ path: shot });
      throw new Error(`no table rows at ${page.url()}: ${(await page.textContent('body')).slice(0, 2000)}`);
    }
    const read = () =>
      page.$$eval('#rows tbody tr', trs =>
        trs.map(tr => ({ user: tr.dataset.user, cells: [...tr.children].map(td => td.textContent) }))
      );
    const rows = await read();
    const machine = await page.textContent('#machine');
    await page.screenshot({ path: shot });
    await page.click('th[data-k="joules"]'); // same column again: ascending
    const rowsAfterClick = await read();
    console.log(JSON.stringify({ rows, rows_after_click: rowsAfterClick, machine }));
  } finally {
    await browser.close();
  }
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
