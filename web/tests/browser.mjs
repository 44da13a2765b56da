// browser.mjs — what every browser spec shares: Debian's chromium through playwright-core, a
// page at 1280×800 that fails the test on any uncaught page error, and screenshots saved
// under the test output directory. The Rust tests in tests/tests/e2e/ui.rs start a collector
// fed with fixture data and pass AFTERGLOW_URL and AFTERGLOW_SCREENSHOTS.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const baseUrl = process.env.AFTERGLOW_URL;

/** A headless chromium and one page on it; `pageErrors` collects uncaught page errors. */
export async function openBrowser({ width = 1280, height = 800 } = {}) {
  assert.ok(baseUrl, 'AFTERGLOW_URL must name a running collector');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width, height } });
  const pageErrors = [];
  page.on('pageerror', (error) => { pageErrors.push(error); });
  return { browser, page, pageErrors };
}

/** Saves a screenshot of `page` as `<name>.png` in AFTERGLOW_SCREENSHOTS (if set). */
export async function screenshot(page, name) {
  const dir = process.env.AFTERGLOW_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
}
