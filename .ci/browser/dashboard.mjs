// The dashboard in a real browser: Debian's chromium driven by playwright-core.
//
//   node dashboard.mjs <exai-binary> <screenshot.png>
//
// Starts `exai sim` (realistic latencies: GLM answers in 1-5 s; with a script for the auditor's model, so the auditor gets a JSON array of observations) and
// `exai serve` with a token, the auditor and quick alert rules; drives MCP calls over HTTP (some failing); opens
// /dashboard in headless chromium; checks the page's numbers against /metrics, the live recent-calls table, the
// alerts strip, the charts, the auditor panel's filters and its Acknowledge button (verified through the API);
// saves a screenshot; then keeps a fresh page open for EXAI_BROWSER_SOAK_SECS (default 60) under load and asserts
// it used exactly one stream connection, from the page's own requests and from the server's counter; finally stops
// the daemon and checks that the page reports it and retries with backoff (a few attempts, not a storm).
// Exits non-zero on the first failed check.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const [bin, screenshot] = process.argv.slice(2);
if (!bin || !screenshot) {
  console.error('usage: node dashboard.mjs <exai-binary> <screenshot.png>');
  process.exit(2);
}
const modules = process.env.EXAI_BROWSER_MODULES || path.dirname(new URL(import.meta.url).pathname);
const { chromium } = createRequire(path.join(modules, 'package.json'))('playwright-core');
const CHROMIUM = process.env.EXAI_CHROMIUM || '/usr/bin/chromium';
const SOAK_SECS = Number(process.env.EXAI_BROWSER_SOAK_SECS || 60);
const TOKEN = 'browser-test-token';
const AUDITOR_MODEL = 'glm-4.5-air';
const FINDINGS = [
  { severity: 'warning', category: 'errors', message: 'chat calls for kimi fail: KIMI_API_KEY is not set', evidence: 'tool_error on every kimi call' },
  { severity: 'info', category: 'usage', message: 'status is called more often than any other tool', evidence: 'status: most calls in the batch' },
];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'exai-browser-'));
const children = [];
let checks = 0;
const log = (...a) => console.log('[browser]', ...a);
function check(ok, what, detail = '') {
  if (!ok) throw new Error(`FAILED: ${what}${detail ? `\n  ${detail}` : ''}`);
  checks += 1;
  log(`ok ${checks} - ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(what, fn, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last === true || (last && last.ok)) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > until) throw new Error(`FAILED: ${what} (within ${timeoutMs} ms)\n  last: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------ processes
function start(name, args, env, pattern) {
  const logFile = path.join(work, `${name}.log`);
  const child = spawn(bin, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME || '/tmp', EXAI_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', fs.openSync(logFile, 'w')] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no ${pattern} within 30 s (log: ${logFile})`)), 30000);
    child.on('exit', (code) => reject(new Error(`${name} exited with ${code}: ${fs.readFileSync(logFile, 'utf8')}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}

function stopAll() {
  for (const c of children) if (c.exitCode == null) c.kill('SIGTERM');
}
process.on('exit', stopAll);

// ------------------------------------------------------------------ HTTP helpers
let base;
const auth = { authorization: `Bearer ${TOKEN}` };

async function getJson(p) {
  const r = await fetch(base + p, { headers: auth });
  if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function metrics() {
  const r = await fetch(`${base}/metrics`, { headers: auth });
  if (!r.ok) throw new Error(`/metrics: ${r.status}`);
  return r.text();
}

function parseMetrics(text) {
  const tools = {};
  const samples = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const head = line.slice(0, sp);
    const value = Number(line.slice(sp + 1));
    samples[head] = value;
    if (!head.startsWith('exai_tool_calls_total{')) continue;
    const labels = Object.fromEntries([...head.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const t = (tools[labels.tool] ??= { calls: 0, errors: 0 });
    t.calls += value;
    if (labels.status !== 'ok' && labels.status !== 'cancelled') t.errors += value;
  }
  const total = Object.values(tools).reduce((a, t) => a + t.calls, 0);
  const errors = Object.values(tools).reduce((a, t) => a + t.errors, 0);
  return { tools, total, errors, samples };
}

class Mcp {
  async open() {
    const r = await this.post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser-test', version: '1' } } });
    this.session = r.headers.get('mcp-session-id');
    if (!this.session) throw new Error('no mcp-session-id');
    await r.text();
    await (await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' })).text();
    this.id = 1;
    return this;
  }
  post(body) {
    const headers = { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (this.session) Object.assign(headers, { 'mcp-session-id': this.session, 'mcp-protocol-version': '2025-11-25' });
    return fetch(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) });
  }
  async call(name, args = {}) {
    const id = ++this.id;
    const r = await this.post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    const text = await r.text();
    const msgs = text.trim().startsWith('{') ? [text] : text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5));
    const reply = msgs.map((m) => { try { return JSON.parse(m); } catch { return null; } }).find((m) => m && m.id === id);
    if (!reply || !reply.result) throw new Error(`tools/call ${name}: ${text.slice(0, 300)}`);
    return reply.result;
  }
}

// ------------------------------------------------------------------ page helpers
async function pageNumbers(page) {
  return page.evaluate(() => {
    const v = (id) => document.getElementById(id).dataset.value;
    const tools = {};
    for (const tr of document.querySelectorAll('#tool-totals tr[data-tool]')) {
      tools[tr.dataset.tool] = { calls: Number(tr.dataset.calls), errors: Number(tr.dataset.errors) };
    }
    return { total: Number(v('m-calls-total')), errors: Number(v('m-errors-total')), inflight: Number(v('m-inflight')), tools, status: document.getElementById('stream-status').dataset.state };
  });
}

async function pageMatchesMetrics(page) {
  const m = parseMetrics(await metrics());
  const p = await pageNumbers(page);
  const ok = p.total === m.total && p.errors === m.errors && JSON.stringify(sortKeys(p.tools)) === JSON.stringify(sortKeys(m.tools));
  return { ok, page: p, metrics: { total: m.total, errors: m.errors, tools: m.tools } };
}
const sortKeys = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

// ------------------------------------------------------------------ the test
async function main() {
  const script = JSON.stringify({ reply: JSON.stringify(FINDINGS) });
  const [, simUrl] = await start('sim', ['sim', '--port', '0', '--profile', 'realistic', '--model-script', `${AUDITOR_MODEL}=${script}`], {}, /exai-sim listening on (http:\/\/\S+)/);
  const [, addr] = await start('serve', ['serve', '--port', '0', '--data-dir', path.join(work, 'data')], {
    EXAI_WS_PORT: '0',
    EXAI_HTTP_TOKEN: TOKEN,
    GLM_API_KEY: 'sim-key',
    GLM_BASE_URL: `${simUrl}/api/paas/v4`,
    AI_AUDITOR_ENABLED: 'true',
    AI_AUDITOR_MODEL: AUDITOR_MODEL,
    AI_AUDITOR_RATE_LIMIT: '5',
    AI_AUDITOR_BATCH_SIZE: '50',
    EXAI_ALERTS_INTERVAL_SECS: '1',
    EXAI_ALERTS_MIN_CALLS: '3',
    EXAI_ALERTS_ERROR_RATE_PERCENT: '5',
  }, /exai listening on http:\/\/(\S+)/);
  base = `http://${addr}`;
  log(`daemon at ${base}, simulator at ${simUrl}, work dir ${work}`);

  // Calls: ok ones, a provider failure (Kimi has no key) and a schema failure.
  const mcp = await new Mcp().open();
  for (let i = 0; i < 3; i++) await mcp.call('status');
  await mcp.call('version');
  const ok = await mcp.call('chat', { prompt: 'hello from the browser test' });
  check(!ok.isError, 'a chat call through the simulator succeeds', JSON.stringify(ok).slice(0, 300));
  const kimi = await mcp.call('chat', { prompt: 'hi', model: 'kimi' });
  check(kimi.isError === true, 'a chat call to Kimi without a key fails');
  const bad = await mcp.call('chat', { prompt: 'hi', bogus: true });
  check(bad.isError === true, 'a chat call with an unknown argument fails');

  await eventually('the auditor stored an observation', async () => (await getJson('/dashboard/api/observations')).observations.length > 0, 30000);
  check(true, 'the auditor answered by the simulator produced observations');

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${m.text()} (${m.location().url})`); });

    const refused = await page.goto(`${base}/dashboard`);
    check(refused.status() === 401, 'without the token the page answers 401', String(refused.status()));
    pageErrors.length = 0; // the refused load above logs its 401
    await page.goto(`${base}/dashboard?token=${encodeURIComponent(TOKEN)}`);
    check(new URL(page.url()).pathname === '/dashboard' && !page.url().includes('token'), 'signing in with ?token= lands on the bare /dashboard', page.url());
    await page.waitForSelector('#stream-status[data-state="live"]', { timeout: 15000 });
    check(true, 'the live stream connected');

    const matched = await eventually('the page numbers match /metrics', () => pageMatchesMetrics(page));
    check(matched.page.total === 7 && matched.page.errors === 2, 'calls and errors since start match /metrics (7 calls, 2 errors)', JSON.stringify(matched));
    check(matched.page.tools.status?.calls === 3 && matched.page.tools.chat?.errors === 2, 'calls by tool match /metrics', JSON.stringify(matched.page.tools));

    // A call made now shows up live, first in the recent-calls table.
    await mcp.call('challenge', { prompt: 'the dashboard is live' });
    await eventually('the new call appears at the top of the recent calls', async () => page.evaluate(() => document.querySelector('#calls tbody tr')?.dataset.tool === 'challenge'), 5000);
    check(true, 'a new call appears in the recent-calls table over the stream');
    await eventually('the page numbers match /metrics after the new call', () => pageMatchesMetrics(page));
    check(true, 'the page numbers follow /metrics after a new call');
    const rows = await page.$$eval('#calls tbody tr', (trs) => trs.map((t) => t.dataset.status));
    check(rows.includes('ok') && rows.includes('invalid') && rows.some((r) => r === 'error' || r === 'tool_error'), 'recent calls show ok and failed calls', rows.join(','));

    const charts = await page.evaluate(() => ({
      latency: Number(document.getElementById('chart-latency').dataset.points),
      success: Number(document.getElementById('chart-success').dataset.bars),
      errors: Number(document.getElementById('chart-errors').dataset.bars),
      limits: document.querySelectorAll('#limits tr[data-limit]').length,
      conns: document.querySelector('#connections tr[data-transport="dashboard"]')?.dataset.connections,
      cpu: document.getElementById('m-cpu').dataset.value,
      rss: Number(document.getElementById('m-rss').dataset.value),
    }));
    check(charts.latency >= 1 && charts.success >= 4 && charts.errors >= 1, 'charts: latency trend, success by tool, errors by kind', JSON.stringify(charts));
    check(charts.limits >= 1 && charts.conns === '1' && charts.cpu !== '' && charts.rss > 0, 'permits, one dashboard connection, CPU and memory shown', JSON.stringify(charts));

    // Alerts: 2 failures in 8 calls is past the 5% rule: the strip shows what the API says is firing.
    const alerts = await eventually('the error-rate alert fires', async () => {
      const a = await getJson('/dashboard/api/alerts');
      return { ok: a.firing.some((x) => x.rule === 'error_rate'), firing: a.firing };
    }, 20000);
    await eventually('the alerts strip shows the firing alerts', async () => page.evaluate((n) => document.querySelectorAll('#alerts-strip [data-rule]').length === n, alerts.firing.length), 5000);
    const strip = await page.$eval('#alerts-strip [data-rule="error_rate"]', (e) => ({ severity: e.dataset.severity, cls: e.className, colour: getComputedStyle(e).borderLeftColor }));
    check(strip.cls.includes(strip.severity) && strip.colour !== 'rgb(39, 48, 57)', 'the alerts strip shows error_rate with its severity colour', JSON.stringify(strip));

    // Auditor panel: filters, then acknowledge one and check through the API.
    await page.waitForSelector('#observations li[data-id]', { timeout: 15000 });
    await page.selectOption('#obs-severity', 'warning');
    await eventually('the severity filter applies', async () => page.evaluate(() => {
      const items = [...document.querySelectorAll('#observations li[data-id]')];
      return items.length > 0 && items.every((li) => li.dataset.severity === 'warning');
    }), 5000);
    check(true, 'the severity filter shows only warnings');
    await page.selectOption('#obs-category', 'errors');
    await eventually('the category filter applies', async () => page.evaluate(() => {
      const items = [...document.querySelectorAll('#observations li[data-id]')];
      return items.length > 0 && items.every((li) => li.dataset.category === 'errors' && li.dataset.severity === 'warning');
    }), 5000);
    check(true, 'the category filter shows only errors');
    const id = await page.$eval('#observations li[data-id]', (li) => li.dataset.id);
    await page.click(`#observations li[data-id="${id}"] button[data-action="ack"]`);
    await eventually('the acknowledged observation leaves the open list', async () => page.evaluate((i) => !document.querySelector(`#observations li[data-id="${i}"]`), id), 5000);
    const stored = (await getJson('/dashboard/api/observations?acknowledged=true')).observations.find((o) => String(o.id) === id);
    check(stored && stored.acknowledged === true && stored.acknowledged_at_ms > 0, `observation ${id} is acknowledged in the API`, JSON.stringify(stored));

    // The window selector: a new window is one new stream, and the label follows.
    await page.selectOption('#window-select', '3600');
    await eventually('the window changes to 1 h', async () => page.evaluate(() => document.getElementById('window-label').textContent.startsWith('last 1 h')), 10000);
    check(true, 'the window selector switches the statistics to 1 hour');
    await page.selectOption('#window-select', '300'); // remembered: the soak page starts with 5 min
    check(pageErrors.length === 0, 'no script errors on the page', pageErrors.join('\n'));
    await page.close();

    // Soak: a fresh page left open under load uses exactly one stream.
    await eventually('the closed page left the stream count', async () => parseMetrics(await metrics()).samples['exai_open_connections{transport="dashboard"}'] === 0, 10000);
    const openedBefore = parseMetrics(await metrics()).samples.exai_dashboard_streams_opened_total;
    const soak = await context.newPage();
    const streamRequests = [];
    soak.on('request', (r) => { if (new URL(r.url()).pathname === '/dashboard/stream') streamRequests.push(r.url()); });
    soak.on('pageerror', (e) => pageErrors.push(e.message));
    await soak.goto(`${base}/dashboard`);
    await soak.waitForSelector('#stream-status[data-state="live"]', { timeout: 15000 });
    log(`soak: ${SOAK_SECS} s with calls in a loop`);
    const loadUntil = Date.now() + SOAK_SECS * 1000;
    let driven = 0;
    const loaders = [0, 1].map(async (n) => {
      const client = await new Mcp().open();
      while (Date.now() < loadUntil) {
        const pick = driven % 10;
        if (pick === 9) await client.call('chat', { prompt: 'hi', model: 'kimi' });
        else if (pick % 3 === 0) await client.call('chat', { prompt: `load ${n} ${driven}` });
        else await client.call('status');
        driven += 1;
        await sleep(100);
      }
    });
    await Promise.all(loaders);
    log(`soak: drove ${driven} calls`);
    const after = parseMetrics(await metrics());
    check(streamRequests.length === 1, 'the page opened exactly one stream in the soak', streamRequests.join('\n'));
    check(after.samples.exai_dashboard_streams_opened_total - openedBefore === 1, 'the server counted exactly one stream opened in the soak', `${openedBefore} -> ${after.samples.exai_dashboard_streams_opened_total}`);
    check(after.samples['exai_open_connections{transport="dashboard"}'] === 1, 'one dashboard stream is open');
    const live = await eventually('the soak page still matches /metrics', () => pageMatchesMetrics(soak), 10000);
    check(live.page.status === 'live' && live.page.total >= driven, 'the soak page is live and its numbers match /metrics', JSON.stringify(live.page.total));
    check(pageErrors.length === 0, 'no script errors during the soak', pageErrors.join('\n'));

    // The screenshot for the README: the soak page with every observation shown.
    await soak.selectOption('#obs-acknowledged', '');
    await eventually('the auditor list shows acknowledged ones too', async () => soak.evaluate(() => document.querySelectorAll('#observations li[data-acknowledged="true"]').length > 0), 5000);
    await soak.setViewportSize({ width: 1440, height: 1400 });
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await soak.screenshot({ path: screenshot });
    check(fs.statSync(screenshot).size > 10000, `screenshot saved to ${screenshot}`);

    // The daemon goes away: the page says so and retries with backoff, not in a storm.
    const before = streamRequests.length;
    const daemon = children[1];
    daemon.kill('SIGTERM');
    await new Promise((r) => (daemon.exitCode != null ? r() : daemon.once('exit', r)));
    await soak.waitForSelector('#stream-status[data-state="down"]', { timeout: 10000 });
    await sleep(12000);
    const retries = streamRequests.length - before;
    const shown = await soak.$eval('#stream-status', (e) => e.textContent);
    check(retries >= 1 && retries <= 4, `with the daemon gone the page retried ${retries} times in 12 s, with backoff`, shown);
  } finally {
    await browser.close();
  }
}

main().then(
  () => {
    console.log(`${checks} passed, 0 failed`);
    stopAll();
    fs.rmSync(work, { recursive: true, force: true });
    process.exit(0);
  },
  (e) => {
    console.error(`[browser] ${e.stack || e.message}`);
    console.error(`[browser] logs kept in ${work}`);
    console.log(`${checks} passed, 1 failed`);
    stopAll();
    process.exit(1);
  },
);
