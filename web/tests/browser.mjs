// browser.mjs — what every browser spec shares: Debian's chromium through playwright-core, a
// page at 1280×800 that fails the test on any uncaught page error or Content-Security-Policy
// violation (the collector's policy allows no inline script or style), and screenshots saved
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
  await watchPage(page, pageErrors);
  return { browser, page, pageErrors };
}

/**
 * Adds to `errors` what `page` reports that must fail a test: uncaught page errors, and every
 * Content-Security-Policy violation, from the page's `securitypolicyviolation` events and from
 * chromium's console (which also tells of those no event reaches, as in a worker).
 */
export async function watchPage(page, errors) {
  page.on('pageerror', (error) => { errors.push(error); });
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      errors.push(new Error(`CSP violation (console): ${message.text()}`));
    }
  });
  await page.exposeFunction('__afterglowCspViolation', (text) => {
    errors.push(new Error(`CSP violation: ${text}`));
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const where = `${event.sourceFile || 'the page'}:${event.lineNumber}`;
      window.__afterglowCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || 'inline code'} at ${where}`);
    });
  });
}

/** Saves a screenshot of `page` as `<name>.png` in AFTERGLOW_SCREENSHOTS (if set). */
export async function screenshot(page, name) {
  const dir = process.env.AFTERGLOW_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
}
