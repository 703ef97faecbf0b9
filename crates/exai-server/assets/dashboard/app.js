// exai dashboard: one EventSource on /dashboard/stream, the auditor's observations over the JSON API, charts as
// inline SVG. No framework and nothing loaded from elsewhere. Element ids and data-* attributes are stable: the
// browser test reads them.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const MAX_CALL_ROWS = 50;
  const OBSERVATIONS_EVERY_MS = 10000;
  const MAX_OBSERVATIONS = 50;

  const state = {
    windowSecs: Number(localStorage.getItem('exai.window')) || 300,
    source: null,
    attempts: 0, // failed connection attempts since the last good event
    reconnectTimer: null,
    streamsOpened: 0,
    lastSnapshot: null,
  };

  // ------------------------------------------------------------------ formatting
  const fmtMs = (ms) => (ms == null ? '–' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`);
  const fmtPct = (x) => `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)}%`;
  const fmtBytes = (b) => (b == null ? '–' : b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : `${(b / (1 << 20)).toFixed(1)} MiB`);
  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const fmtWindow = (s) => (s >= 3600 ? `${s / 3600} h` : `${s / 60} min`);

  function setMetric(id, value, text) {
    const el = $(id);
    el.dataset.value = value == null ? '' : String(value);
    el.textContent = text;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') node.className = v;
      else if (k.startsWith('data-')) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text != null) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------------ the stream
  function setStatus(kind, text) {
    const s = $('stream-status');
    s.dataset.state = kind;
    s.textContent = text;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.source) state.source.close();
    const source = new EventSource(`/dashboard/stream?window=${state.windowSecs}`);
    state.source = source;
    state.streamsOpened += 1;
    document.body.dataset.streamsOpened = String(state.streamsOpened);
    setStatus('connecting', 'connecting…');
    source.addEventListener('snapshot', (e) => {
      state.attempts = 0;
      setStatus('live', 'live');
      renderSnapshot(JSON.parse(e.data));
    });
    source.addEventListener('call', (e) => addCall(JSON.parse(e.data), true));
    source.addEventListener('alert', (e) => applyAlert(JSON.parse(e.data)));
    source.addEventListener('lagged', () => loadCalls());
    source.onerror = () => {
      // Take reconnecting into our own hands: exponential backoff with jitter, never a storm.
      source.close();
      if (state.source !== source) return;
      state.source = null;
      state.attempts += 1;
      const delay = Math.min(30000, 1000 * 2 ** Math.min(state.attempts, 5)) * (0.75 + Math.random() * 0.5);
      setStatus('down', `disconnected; retrying in ${Math.round(delay / 1000)} s`);
      state.reconnectTimer = setTimeout(connect, delay);
    };
  }

  // ------------------------------------------------------------------ snapshot
  function renderSnapshot(s) {
    state.lastSnapshot = s;
    const w = s.window;
    $('version').textContent = `v${s.version} · up ${Math.floor(s.uptime_secs / 60)} min`;
    setMetric('m-rate', w.rate_per_sec, w.rate_per_sec.toFixed(2));
    setMetric('m-error-rate', w.error_rate, w.calls ? fmtPct(w.error_rate) : '–');
    setMetric('m-p50', w.p50_ms, fmtMs(w.p50_ms));
    setMetric('m-p95', w.p95_ms, fmtMs(w.p95_ms));
    setMetric('m-inflight', s.inflight, s.inflight);
    setMetric('m-calls-total', s.calls_total, s.calls_total.toLocaleString('en'));
    setMetric('m-errors-total', s.errors_total, s.errors_total.toLocaleString('en'));
    setMetric('m-cpu', s.process ? s.process.cpu_percent : null, s.process ? `${s.process.cpu_percent.toFixed(1)}%` : 'n/a');
    setMetric('m-rss', s.process ? s.process.resident_bytes : null, s.process ? fmtBytes(s.process.resident_bytes) : 'n/a');
    const limit = s.process && s.process.memory_limit_bytes;
    $('m-rss').title = limit ? `${fmtPct(s.process.resident_bytes / limit)} of ${fmtBytes(limit)} available` : '';
    $('m-cpu').title = 'per cent of all CPUs the process may use, as the cpu alert rule measures it';
    $('window-label').textContent = `last ${fmtWindow(w.window_secs)}, ${w.calls} calls`;
    renderLimits(s.limits);
    renderConnections(s.connections, s.sessions);
    renderCircuits(s.circuits);
    renderToolTotals(s.tools_total);
    renderAlerts(s.alerts);
    drawLatency(w.trend);
    drawBars($('chart-success'), w.by_tool.map((t) => ({ label: t.tool, value: t.success_rate, text: `${fmtPct(t.success_rate)} of ${t.calls}` })), 1, 'ok');
    const errTotal = w.errors_by_kind.reduce((a, k) => a + k.count, 0);
    drawBars($('chart-errors'), w.errors_by_kind.map((k) => ({ label: k.kind, value: k.count, text: `${k.count} (${fmtPct(k.count / errTotal)})` })), Math.max(1, ...w.errors_by_kind.map((k) => k.count)), 'err');
  }

  function renderLimits(limits) {
    const body = $('limits').tBodies[0];
    body.replaceChildren(...limits.map((l) => {
      const meter = el('meter', { min: 0, max: l.capacity, value: l.in_use });
      return el('tr', { 'data-limit': l.name, 'data-in-use': l.in_use, 'data-capacity': l.capacity },
        el('td', {}, l.name), el('td', {}, `${l.in_use} / ${l.capacity}`), el('td', {}, meter), el('td', {}, l.waiting));
    }));
  }

  function renderConnections(connections, sessions) {
    const names = [...new Set([...Object.keys(connections), ...Object.keys(sessions)])].sort();
    $('connections').tBodies[0].replaceChildren(...names.map((n) =>
      el('tr', { 'data-transport': n, 'data-connections': connections[n] ?? 0, 'data-sessions': sessions[n] ?? '' },
        el('td', {}, n), el('td', {}, connections[n] ?? 0), el('td', {}, sessions[n] ?? '–'))));
  }

  function renderCircuits(circuits) {
    const ul = $('circuits');
    if (!circuits.length) return ul.replaceChildren(el('li', { class: 'muted' }, 'none used yet'));
    ul.replaceChildren(...circuits.map((c) =>
      el('li', { class: `chip ${c.state}`, 'data-target': c.target, 'data-state': c.state }, `${c.target}: ${c.state.replace('_', '-')}`)));
  }

  function renderToolTotals(tools) {
    $('tool-totals').tBodies[0].replaceChildren(...tools.map((t) =>
      el('tr', { 'data-tool': t.tool, 'data-calls': t.calls, 'data-errors': t.errors },
        el('td', {}, t.tool), el('td', { class: 'calls' }, t.calls), el('td', { class: t.errors ? 'errors bad' : 'errors' }, t.errors))));
  }

  // ------------------------------------------------------------------ alerts
  const firing = new Map();

  function renderAlerts(alerts) {
    firing.clear();
    for (const a of alerts) firing.set(a.rule, a);
    paintAlerts();
  }

  function applyAlert(change) {
    if (change.firing) firing.set(change.rule, change);
    else firing.delete(change.rule);
    paintAlerts();
  }

  function paintAlerts() {
    const strip = $('alerts-strip');
    strip.dataset.count = String(firing.size);
    if (!firing.size) return strip.replaceChildren(el('span', { class: 'alert none' }, 'No alerts firing'));
    const order = { critical: 0, warning: 1, info: 2 };
    const list = [...firing.values()].sort((a, b) => order[a.severity] - order[b.severity] || a.rule.localeCompare(b.rule));
    strip.replaceChildren(...list.map((a) =>
      el('span', { class: `alert ${a.severity}`, 'data-rule': a.rule, 'data-severity': a.severity, title: `since ${fmtTime(a.at_ms)}` },
        el('b', {}, a.severity), ` ${a.rule}: ${a.message}`)));
  }

  // ------------------------------------------------------------------ calls
  function callRow(c) {
    const bad = c.status !== 'ok' && c.status !== 'cancelled';
    return el('tr', { 'data-tool': c.tool, 'data-status': c.status, class: bad ? 'bad' : '' },
      el('td', {}, fmtTime(c.at_ms)), el('td', {}, c.tool), el('td', { class: 'status' }, c.status),
      el('td', {}, fmtMs(c.latency_ms)), el('td', {}, c.model ? `${c.provider ?? ''}/${c.model}` : '–'), el('td', {}, c.error_kind ?? ''));
  }

  function addCall(c) {
    const body = $('calls').tBodies[0];
    body.prepend(callRow(c));
    while (body.rows.length > MAX_CALL_ROWS) body.deleteRow(-1);
  }

  async function api(path, init) {
    const r = await fetch(path, { credentials: 'same-origin', ...init });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.message || `${r.status} ${r.statusText}`);
    return body;
  }

  async function loadCalls() {
    try {
      const { calls } = await api(`/dashboard/api/calls?limit=${MAX_CALL_ROWS}`);
      $('calls').tBodies[0].replaceChildren(...calls.map(callRow));
    } catch (e) {
      console.warn('calls', e);
    }
  }

  // ------------------------------------------------------------------ charts
  function drawLatency(trend) {
    const chart = $('chart-latency');
    const W = 600, H = 200, L = 44, B = 18, T = 8;
    const max = Math.max(1, ...trend.map((b) => b.p95_ms ?? 0));
    const x = (i) => L + (i * (W - L - 4)) / Math.max(1, trend.length - 1);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const nodes = [];
    for (const f of [0, 0.5, 1]) {
      nodes.push(svg('line', { x1: L, x2: W, y1: y(max * f), y2: y(max * f), class: 'grid' }));
      nodes.push(svg('text', { x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end', class: 'axis' }, fmtMs(Math.round(max * f))));
    }
    if (trend.length) {
      nodes.push(svg('text', { x: L, y: H - 4, class: 'axis' }, fmtTime(trend[0].start_ms)));
      nodes.push(svg('text', { x: W - 4, y: H - 4, 'text-anchor': 'end', class: 'axis' }, 'now'));
    }
    for (const key of ['p95_ms', 'p50_ms']) {
      let d = '';
      let pen = false;
      trend.forEach((b, i) => {
        if (b[key] == null) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(b[key]).toFixed(1)}`;
        pen = true;
      });
      if (d) nodes.push(svg('path', { d, class: `line ${key.replace('_ms', '')}` }));
      trend.forEach((b, i) => {
        if (b[key] != null) nodes.push(svg('circle', { cx: x(i), cy: y(b[key]), r: 2, class: `dot ${key.replace('_ms', '')}` }));
      });
    }
    chart.dataset.points = String(trend.filter((b) => b.calls > 0).length);
    chart.replaceChildren(...nodes);
  }

  function drawBars(chart, rows, max, tone) {
    const W = 320, rowH = 22, labelW = 120;
    const shown = rows.slice(0, 12);
    chart.setAttribute('viewBox', `0 0 ${W} ${Math.max(40, shown.length * rowH + 4)}`);
    chart.dataset.bars = String(shown.length);
    if (!shown.length) {
      chart.replaceChildren(svg('text', { x: 6, y: 24, class: 'axis' }, 'nothing in this window'));
      return;
    }
    chart.replaceChildren(...shown.flatMap((r, i) => {
      const yy = i * rowH + 4;
      const w = Math.max(1, ((W - labelW - 95) * r.value) / max);
      const cls = tone === 'ok' ? (r.value >= 0.99 ? 'bar ok' : r.value >= 0.9 ? 'bar warn' : 'bar err') : 'bar err';
      return [
        svg('text', { x: labelW - 4, y: yy + 14, 'text-anchor': 'end', class: 'label' }, r.label.length > 18 ? `${r.label.slice(0, 17)}…` : r.label),
        svg('rect', { x: labelW, y: yy + 3, width: w, height: rowH - 8, rx: 2, class: cls, 'data-label': r.label, 'data-value': r.value }),
        svg('text', { x: labelW + w + 4, y: yy + 14, class: 'axis' }, r.text),
      ];
    }));
  }

  // ------------------------------------------------------------------ auditor
  async function loadObservations() {
    const q = new URLSearchParams({ limit: String(MAX_OBSERVATIONS) });
    for (const [id, name] of [['obs-severity', 'severity'], ['obs-category', 'category'], ['obs-acknowledged', 'acknowledged']]) {
      if ($(id).value) q.set(name, $(id).value);
    }
    const list = $('observations');
    try {
      const body = await api(`/dashboard/api/observations?${q}`);
      const sel = $('obs-category');
      const chosen = sel.value;
      sel.replaceChildren(el('option', { value: '' }, 'All categories'), ...body.categories.map((c) => el('option', { value: c }, c)));
      sel.value = body.categories.includes(chosen) ? chosen : '';
      $('obs-count').textContent = `${body.unacknowledged} open`;
      $('obs-count').dataset.value = String(body.unacknowledged);
      list.dataset.loaded = q.toString();
      if (!body.observations.length) return list.replaceChildren(el('li', { class: 'muted' }, 'No observations match.'));
      list.replaceChildren(...body.observations.map(observationItem));
    } catch (e) {
      list.replaceChildren(el('li', { class: 'bad' }, `Cannot load observations: ${e.message}`));
    }
  }

  function observationItem(o) {
    const button = el('button', { type: 'button', disabled: o.acknowledged, 'data-action': 'ack' }, o.acknowledged ? 'Acknowledged' : 'Acknowledge');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await api(`/dashboard/api/observations/${o.id}/ack`, { method: 'POST' });
      } catch (e) {
        button.disabled = false;
        button.title = e.message;
      }
      loadObservations();
    });
    const evidence = o.evidence ? el('details', {}, el('summary', {}, 'evidence'), el('pre', {}, o.evidence)) : '';
    return el('li', { class: `observation ${o.severity}`, 'data-id': o.id, 'data-severity': o.severity, 'data-category': o.category, 'data-acknowledged': o.acknowledged },
      el('span', { class: `sev ${o.severity}` }, o.severity), el('span', { class: 'cat' }, o.category),
      el('span', { class: 'when muted' }, fmtTime(o.at_ms)), el('span', { class: 'msg' }, o.message), button, evidence);
  }

  // ------------------------------------------------------------------ start
  function start() {
    const sel = $('window-select');
    sel.value = String(state.windowSecs);
    if (sel.value !== String(state.windowSecs)) { state.windowSecs = 300; sel.value = '300'; }
    sel.addEventListener('change', () => {
      state.windowSecs = Number(sel.value);
      localStorage.setItem('exai.window', sel.value);
      connect(); // the window belongs to the stream: one new stream, the old one closed
    });
    for (const id of ['obs-severity', 'obs-category', 'obs-acknowledged']) $(id).addEventListener('change', loadObservations);
    loadCalls();
    loadObservations();
    setInterval(loadObservations, OBSERVATIONS_EVERY_MS);
    connect();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
