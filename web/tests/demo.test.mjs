// demo.test.mjs — runs `scripts/demo` as the README says (on free ports, so that a machine
// running the real demo or other tests does not collide), runs the three searches it prints,
// looks at its UI in Debian's chromium, then stops it as Ctrl-C in a terminal would and checks
// that every process it started is gone. Run by scripts/test after the Rust tests:
//
//   node --test web/tests/demo.test.mjs
//
// Named .test.mjs, not .spec.mjs: the Rust test `ui` runs every *.spec.mjs against a collector
// of its own, and this test brings its own. The screenshot goes to
// $CARGO_TARGET_DIR/test-output/demo.png (target/ without it; AFTERGLOW_DEMO_SCREENSHOT moves it).
//
// Every process the demo starts inherits TMPDIR, which this test points at a directory of its
// own: a process whose environment names that directory was started by the demo, whichever
// session or process group it ended up in (the demo gives each component its own).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = path.resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target');
const screenshotPath = process.env.AFTERGLOW_DEMO_SCREENSHOT
  ?? path.join(targetDir, 'test-output', 'demo.png');
// A first build on a fresh machine takes minutes; after the Rust tests it is a no-op.
const STARTUP_MS = 20 * 60_000;
const STOP_MS = 60_000;

let tmpDir;
let demo;
let output = '';
let exited;

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every process (but this one) whose environment or command line names `dir`. */
function processesUsing(dir) {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue;
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ');
      const state = fs.readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /s, '')[0];
      if (state !== 'Z' && (environ.includes(`TMPDIR=${dir}`) || cmdline.includes(dir))) {
        found.push(`${pid} ${cmdline.trim()}`);
      }
    } catch {
      // The process ended while we looked, or is not ours to read.
    }
  }
  return found;
}

async function waitFor(what, limitMs, check) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}; the demo printed:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const hasExited = () => demo.exitCode !== null || demo.signalCode !== null;

before(async () => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'afterglow-demo-test-'));
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  // As the README says, from the repository; CARGO_TARGET_DIR and AFTERGLOW_DASK_VENV pass
  // through with the rest of the environment. Detached: the demo leads its own process group,
  // which is what a terminal's Ctrl-C signals.
  demo = spawn('scripts/demo', [], {
    cwd: repo,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      AFTERGLOW_HTTP_PORT: String(httpPort),
      AFTERGLOW_GRPC_PORT: String(grpcPort),
      TMPDIR: tmpDir,
    },
  });
  demo.stdout.setEncoding('utf8').on('data', (text) => { output += text; });
  demo.stderr.setEncoding('utf8').on('data', (text) => { output += text; });
  // 'close', not 'exit': 'exit' may come before the last of stdout is read, and the cleanup's
  // closing lines are printed just before the demo exits.
  exited = new Promise((resolve) => demo.on('close', (code, signal) => resolve({ code, signal })));
});

after(async () => {
  if (demo && !hasExited()) {
    demo.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => { setTimeout(resolve, STOP_MS).unref(); })]);
  }
  if (tmpDir) {
    for (const line of processesUsing(tmpDir)) process.kill(Number(line.split(' ')[0]), 'SIGKILL');
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
});

test('scripts/demo runs a Dask cluster, finds what it prints, and leaves nothing behind', { timeout: STARTUP_MS + 5 * 60_000 }, async (t) => {
  const url = await waitFor('the "open http://…" line', STARTUP_MS, () => {
    if (hasExited()) assert.fail(`the demo exited early:\n${output}`);
    return output.match(/^open (http:\/\/127\.0\.0\.1:\d+)$/m)?.[1];
  });
  await waitFor('the demo to finish printing', 10_000, () => output.includes('Press Ctrl-C to stop.'));
  t.diagnostic(`the demo is up at ${url}`);

  const curlLines = output.split('\n').map((line) => line.trim())
    .filter((line) => line.startsWith('curl ') && line.includes('/api/v1/logs/search'));
  assert.equal(curlLines.length, 3, `expected three example searches:\n${output}`);
  const queries = [];
  for (const line of curlLines) {
    assert.ok(line.includes(url), `${line} does not use ${url}`);
    // Exactly as printed, as a user would paste it.
    const { stdout } = await promisify(execFile)('bash', ['-c', line]);
    const { hits } = JSON.parse(stdout);
    assert.ok(hits.length >= 1, `no hits for ${line}`);
    assert.ok(hits.every((hit) => hit.cluster === 'demo'), stdout);
    queries.push(line.match(/'q=(.*)'$/)[1]);
  }

  // Every node's agent shipped: the scheduler's (tailing), w-1's (wrap mode), w-2's and w-3's.
  const all = await (await fetch(`${url}/api/v1/logs/search?q=*&limit=1000`)).json();
  assert.deepEqual([...new Set(all.hits.map((hit) => hit.node))].sort(),
    ['node-1', 'node-2', 'node-3', 'scheduler-0']);
  const running = processesUsing(tmpDir);
  // Collector, scheduler, 3 nannies and their workers, 4 agents at least.
  assert.ok(running.length >= 12, `expected the demo's processes, found:\n${running.join('\n')}`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error));
    // The last example ("everything that went wrong") shows several nodes at once.
    const query = queries.at(-1);
    await page.goto(`${url}/?q=${encodeURIComponent(query)}`);
    await page.waitForSelector('#results .hit');
    assert.equal(await page.inputValue('#q'), query);
    const nodes = await page.$$eval('#results .hit', (hits) => hits.map((hit) => hit.dataset.node));
    assert.ok(new Set(nodes).size >= 2, `hits from one node only: ${nodes.join()}`);
    fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath });
    t.diagnostic(`screenshot: ${screenshotPath}`);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }

  // Ctrl-C in a terminal: SIGINT to the demo's process group.
  process.kill(-demo.pid, 'SIGINT');
  const stopped = await Promise.race([
    exited,
    new Promise((resolve) => { setTimeout(() => resolve(null), STOP_MS).unref(); }),
  ]);
  assert.ok(stopped, `the demo did not exit within ${STOP_MS / 1000} s of SIGINT:\n${output}`);
  assert.equal(stopped.code, 130, `the demo exited with ${JSON.stringify(stopped)}:\n${output}`);
  assert.match(output, /every process the demo started is gone/);
  const left = processesUsing(tmpDir);
  assert.deepEqual(left, [], `still running after the demo stopped:\n${left.join('\n')}`);
  assert.deepEqual(fs.readdirSync(tmpDir), [], 'the demo left files in its temporary directory');
});
