// Opens syncstorm HTML reports in the machine's Chromium (playwright-core drives it) as a
// reader would, at a laptop's 1366×768 and a phone's 390 px, and prints one JSON line per
// report and viewport: console errors, requests that left the file, SVGs without a size,
// whether the verdict banner is visible without scrolling, and the page's horizontal overflow.
// Screenshots go to OUT_DIR. Driven by tests/report_browser.rs.
//
// Usage: CHROMIUM=/usr/bin/chromium OUT_DIR=dir node check_report.mjs REPORT.html…
import { chromium } from 'playwright-core';
import path from 'node:path';

const viewports = [
  { name: 'laptop', width: 1366, height: 768 },
  { name: 'phone', width: 390, height: 844 },
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  for (const report of process.argv.slice(2)) {
    for (const viewport of viewports) {
      const page = await browser.newPage({ viewport });
      const errors = [];
      const requests = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
      await page.goto('file://' + path.resolve(report), { waitUntil: 'load' });
      const layout = await page.evaluate(() => {
        const svgs = [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect());
        const banner = document.querySelector('.banner')?.getBoundingClientRect();
        const bannerFont = document.querySelector('.banner')
          ? parseFloat(getComputedStyle(document.querySelector('.banner')).fontSize) : 0;
        return {
          svgs: svgs.length,
          svgs_without_size: svgs.filter((r) => r.width < 1 || r.height < 1).length,
          banner_bottom: banner ? banner.bottom : null,
          banner_right: banner ? banner.right : null,
          banner_font_px: bannerFont,
          page_width: document.documentElement.scrollWidth,
        };
      });
      const shot = path.join(process.env.OUT_DIR ?? '.',
        `${path.basename(report, '.html')}-${viewport.name}.png`);
      await page.screenshot({ path: shot });
      console.log(JSON.stringify({
        report: path.basename(report), viewport, errors, requests, screenshot: shot, ...layout,
      }));
      await page.close();
    }
  }
} finally {
  await browser.close();
}
