// app.js: DynoAI's web UI. Hash routes (#/runs, #/upload, #/run/ID,
// #/calibrate/ID, #/live, #/jetstream) keep every URL relative to the page,
// so the UI works under any prefix the server is mounted at.
import { get, post, del, upload, url, pick, setAuthHandler, APIError } from './api.js';
import { h, clear } from './dom.js';
import { heatmap, fmt } from './heatmap.js';

const main = document.getElementById('main');
let leave = () => {}; // stops the current page's timers and streams
let session = null;

function errorBox(err) {
  if (!(err instanceof APIError)) return h('div', { class: 'error', role: 'alert' }, String(err && err.message || err));
  return h('div', { class: 'error', role: 'alert', 'data-code': err.code || '' }, err.message,
    err.code ? h('span', {}, ' ', h('code', {}, err.code)) : null,
    err.requestID ? h('span', { class: 'muted' }, ' (request ', err.requestID, ')') : null);
}
function page(title, ...children) {
  clear(main).append(h('h1', {}, title), ...children.flat().filter((c) => c !== null && c !== undefined));
  document.title = title + ' · DynoAI';
}
const date = (s) => (s ? new Date(s).toLocaleString() : '');
const num = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '–');
function runOf(body) { return (body && (body.run || body)) || {}; }
function statusOf(run) { return pick(run, 'status', 'state') || ''; }
function idOf(run) { return pick(run, 'id', 'run_id', 'runId') || ''; }

// ---- login -------------------------------------------------------------
function showLogin(message) {
  leave(); leave = () => {};
  const input = h('input', { type: 'password', id: 'api-key', name: 'key', autocomplete: 'current-password', required: true, size: 40 });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'login', method: 'post' },
    h('p', {}, 'This server needs an API key. Enter it once: it is exchanged for a session in this browser and never put in a URL.'),
    h('div', { class: 'row' }, h('label', { for: 'api-key' }, 'API key', input), h('button', { type: 'submit' }, 'Sign in')), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(out);
    try {
      session = await post('api/session', { key: input.value });
      input.value = '';
      renderWho();
      route();
    } catch (err) { out.append(errorBox(err)); }
  });
  page('Sign in', message ? h('p', { class: 'muted' }, message) : null, form);
  input.focus();
}
setAuthHandler(() => {
  if (document.getElementById('login')) return;
  session = null; renderWho();
  showLogin('Your session has ended or the key lacks access. Sign in again.');
});
function renderWho() {
  const who = clear(document.getElementById('who'));
  if (session && session.authenticated) {
    who.append(h('span', {}, session.tenant || ''), h('button', { type: 'button', onclick: async () => { await del('api/session'); session = await get('api/session'); renderWho(); route(); } }, 'Sign out'));
  }
}
function needLogin() { return session && session.auth_enabled && !session.authenticated && !session.open_reads; }

// ---- runs ----------------------------------------------------------------
const STATUSES = ['', 'queued', 'processing', 'completed', 'failed', 'cancelled'];
const SOURCES = ['', 'upload', 'jetstream', 'jetdrive', 'simulator', 'import'];
function runsPage(params) {
  const status = h('select', { id: 'f-status' }, ...STATUSES.map((s) => h('option', { value: s }, s || 'any')));
  const source = h('select', { id: 'f-source' }, ...SOURCES.map((s) => h('option', { value: s }, s || 'any')));
  const q = h('input', { id: 'f-q', type: 'search', placeholder: 'file name, vehicle' });
  status.value = params.get('status') || ''; source.value = params.get('source') || ''; q.value = params.get('q') || '';
  const body = h('tbody');
  const pager = h('div', { class: 'pager' });
  const msg = h('div');
  const cursors = [''];
  let at = 0;
  const load = async () => {
    clear(msg); clear(body); clear(pager);
    const p = new URLSearchParams({ limit: '20' });
    if (status.value) p.set('status', status.value);
    if (source.value) p.set('source', source.value);
    if (q.value.trim()) p.set('q', q.value.trim());
    if (cursors[at]) p.set('cursor', cursors[at]);
    try {
      const res = await get('api/runs?' + p);
      const runs = res.runs || [];
      if (!runs.length) msg.append(h('p', { class: 'muted' }, 'No runs match. Upload a log to make one.'));
      for (const r of runs) {
        const id = idOf(r), st = r.stats || {};
        body.append(h('tr', {},
          h('td', {}, h('a', { href: '#/run/' + id }, r.filename || r.jetstream_id || id.slice(0, 12))),
          h('td', {}, h('span', { class: 'badge ' + statusOf(r) }, statusOf(r))),
          h('td', {}, r.source || ''), h('td', {}, date(r.created_at)),
          h('td', { class: 'num' }, num(st.peak_hp)), h('td', { class: 'num' }, num(st.peak_torque)),
          h('td', { class: 'num' }, st.corrected_cells ?? '–')));
      }
      const next = pick(res, 'next', 'next_cursor');
      pager.append(
        h('button', { type: 'button', class: 'secondary', disabled: at === 0, onclick: () => { at--; load(); } }, '‹ Newer'),
        h('span', { class: 'muted' }, 'page ' + (at + 1)),
        h('button', { type: 'button', class: 'secondary', disabled: !next, onclick: () => { cursors[at + 1] = next; at++; load(); } }, 'Older ›'));
    } catch (err) { msg.append(errorBox(err)); }
  };
  const filters = h('form', { class: 'row card', role: 'search', id: 'runs-filter' },
    h('label', {}, 'Status', status), h('label', {}, 'Source', source), h('label', {}, 'Search', q),
    h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); cursors.length = 1; at = 0; load(); });
  page('Runs', filters, msg,
    h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'runs' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Run'), h('th', {}, 'Status'), h('th', {}, 'Source'), h('th', {}, 'Date'),
        h('th', { class: 'num' }, 'Peak HP'), h('th', { class: 'num' }, 'Peak torque'), h('th', { class: 'num' }, 'Corrected cells'))), body)),
    pager);
  load();
}

// ---- upload --------------------------------------------------------------
const UPLOAD_OPTIONS = [
  ['smooth_passes', 'Smoothing passes (0–5)', 'number', '0', { min: 0, max: 5, step: 1 }],
  ['clamp_percent', 'Clamp % (0–50]', 'number', '7', { min: 0.1, max: 50, step: 0.1 }],
  ['min_samples', 'Min samples per cell', 'number', '5', { min: 1, max: 10000, step: 1 }],
  ['weighting', 'Weighting', ['', 'equal', 'torque', 'power']],
  ['attribution', 'Attribution', ['', 'bilinear', 'nearest']],
  ['fuel', 'Fuel (targets)', 'text', 'gasoline', {}],
  ['sensor_delay_ms', 'Sensor delay ms (0–2000)', 'number', 'learned', { min: 0, max: 2000, step: 1 }],
  ['vehicle', 'Vehicle', 'text', '', {}],
];
function uploadPage() {
  let file = null;
  const picker = h('input', { type: 'file', id: 'file', accept: '.csv,.txt,.log,.msl,.mlg', class: 'skip' });
  const name = h('span', { class: 'muted' }, 'No file chosen');
  const drop = h('div', { class: 'drop', tabindex: '0', role: 'button', id: 'drop', 'aria-label': 'Choose a log file or drop it here' },
    h('strong', {}, 'Drop a log here'), h('div', {}, 'or press Enter to choose a file'), name);
  const choose = (f) => { file = f; clear(name).append(f ? `${f.name} (${(f.size / 1024).toFixed(0)} KiB)` : 'No file chosen'); go.disabled = !f; };
  picker.addEventListener('change', () => choose(picker.files[0] || null));
  drop.addEventListener('click', () => picker.click());
  drop.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); picker.click(); } });
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => { ev.preventDefault(); drop.classList.remove('over'); choose(ev.dataTransfer.files[0] || null); });
  const fields = UPLOAD_OPTIONS.map(([k, label, type, ph, attrs]) => {
    const input = Array.isArray(type)
      ? h('select', { name: k, id: 'o-' + k }, ...type.map((v) => h('option', { value: v }, v || 'default')))
      : h('input', { name: k, id: 'o-' + k, type, placeholder: ph, ...attrs });
    return h('label', {}, label, input);
  });
  const bar = h('progress', { max: '1', value: '0', id: 'progress' });
  const stage = h('div', { id: 'stage', 'aria-live': 'polite' });
  const out = h('div');
  const go = h('button', { type: 'submit', disabled: true, id: 'analyze' }, 'Analyze');
  const form = h('form', { class: 'card', id: 'upload' }, drop, picker, h('h2', {}, 'Options'),
    h('p', { class: 'muted' }, 'Empty fields use the server’s defaults.'), h('div', { class: 'row' }, ...fields),
    h('p', {}, go), bar, stage, out);
  let stopped = false;
  leave = () => { stopped = true; };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!file) return;
    clear(out); clear(stage); go.disabled = true;
    const fd = new FormData();
    for (const el of form.querySelectorAll('[name]')) if (el.name !== 'file' && el.value.trim() !== '') fd.append(el.name, el.value.trim());
    fd.append('file', file, file.name);
    try {
      const res = await upload('api/analyze', fd, (p) => { bar.value = p * 0.3; stage.textContent = `uploading ${(p * 100).toFixed(0)}%`; });
      const id = pick(res, 'run_id', 'runId', 'id');
      const link = (res.links && (res.links.run || res.links.self)) || 'api/runs/' + id;
      for (;;) {
        if (stopped) return;
        const run = runOf(await get(link));
        const st = statusOf(run);
        bar.value = 0.3 + 0.7 * (run.progress || 0);
        stage.textContent = `${st}${run.stage ? ' · ' + run.stage : ''}${run.message ? ' · ' + run.message : ''}`;
        if (st === 'completed') { location.hash = '#/run/' + id; return; }
        if (st === 'failed' || st === 'cancelled') {
          const e = run.error || {};
          out.append(errorBox(new APIError(0, e.code || st.toUpperCase(), e.message || 'the analysis ' + st, '', null)));
          go.disabled = false;
          return;
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    } catch (err) { out.append(errorBox(err)); go.disabled = false; }
  });
  page('Upload a log', form);
}

// ---- a run -----------------------------------------------------------------
const METRICS = [
  ['percent', 'VE correction %', 'diverging', 2, 2], // the last: the scale's least limit, as the CLI's pictures
  ['afr_error', 'AFR error', 'diverging', 2, 0.5],
  ['hits', 'Hits (coverage)', 'sequential', 0],
  ['confidence', 'Confidence', 'category', 0],
];
function loadAxis(res) {
  const load = pick(res, 'map_kpa', 'load', 'load_values') || [];
  return { load, label: (res.load_unit || 'kPa') };
}
async function runPage(id) {
  page('Run', h('p', { class: 'muted' }, 'Loading…'));
  let body;
  try { body = await get('api/runs/' + encodeURIComponent(id)); } catch (err) { page('Run', errorBox(err)); return; }
  const run = runOf(body), files = body.files || [];
  const res = run.results || null;
  const st = run.stats || {};
  const summary = h('div', { class: 'card' }, h('dl', { class: 'kv' },
    h('dt', {}, 'Status'), h('dd', {}, h('span', { class: 'badge ' + statusOf(run), id: 'run-status' }, statusOf(run))),
    h('dt', {}, 'File'), h('dd', {}, run.filename || ''), h('dt', {}, 'Source'), h('dd', {}, run.source || ''),
    h('dt', {}, 'Created'), h('dd', {}, date(run.created_at)),
    h('dt', {}, 'Peak HP / torque'), h('dd', {}, `${num(st.peak_hp)} / ${num(st.peak_torque)}`),
    h('dt', {}, 'Corrected cells'), h('dd', {}, String(st.corrected_cells ?? '–')),
    res && res.cylinders ? [h('dt', {}, 'Load axis'), h('dd', {}, `${res.load_axis || ''} (${res.load_unit || ''}): ${res.load_reason || ''}`),
      h('dt', {}, 'Target'), h('dd', {}, res.target || ''), h('dt', {}, 'Samples'), h('dd', {}, String(res.samples ?? ''))] : null),
  res && res.import && !res.cylinders ? null : h('p', {}, h('a', { href: '#/calibrate/' + id }, 'Calibrate a base VE table with this run →')));
  if (!res) {
    page('Run ' + (run.filename || id), summary, run.error ? errorBox(new APIError(0, run.error.code, run.error.message, '', null)) : h('p', { class: 'muted' }, 'No results yet.'), downloads(files));
    if (statusOf(run) === 'queued' || statusOf(run) === 'processing') { const t = setTimeout(() => runPage(id), 1000); leave = () => clearTimeout(t); }
    return;
  }
  if (res.import && !res.cylinders) {
    // A run imported from the predecessor (dbtool import-dynoai3): its
    // analysis was made there; its files are the evidence.
    page('Run ' + (run.filename || id), summary, run.error ? errorBox(new APIError(0, run.error.code, run.error.message, '', null)) : null,
      importCard(res.import), downloads(files));
    return;
  }
  const { load, label } = loadAxis(res);
  const cyls = res.cylinders || [];
  const evidence = h('div', { class: 'card evidence', id: 'evidence', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Hover, tap or focus a cell (Tab, Enter) for its evidence.'));
  // The decision log (result.json "decisions") has each cell's verdict and
  // the samples each rule turned away near it; older results lack it.
  const decided = new Map();
  for (const d of (res.decisions && res.decisions.cells) || []) decided.set(`${d.cylinder}|${d.rpm}|${d.load}`, d);
  const showEvidence = (c, i, j) => {
    const v = (k) => (c[k] && c[k][i] ? c[k][i][j] : null);
    const cell = decided.get(`${c.name}|${res.rpm[i]}|${load[j]}`);
    const rej = cell ? (cell.rejected || {}) : (c.rejected || {});
    const rejLabel = cell ? 'Rejected near this cell' : 'Rejected samples (' + c.name + ')';
    clear(evidence).append(h('h3', {}, `${c.name}: ${res.rpm[i]} RPM × ${load[j]} ${label}`), h('dl', {},
      h('dt', {}, 'Samples (hits)'), h('dd', {}, fmt(v('hits'), 1)),
      h('dt', {}, 'Correction'), h('dd', {}, v('percent') === null ? 'none' : fmt(v('percent'), 3) + ' %'),
      h('dt', {}, 'Multiplier'), h('dd', {}, fmt(v('multiplier'), 4)),
      h('dt', {}, 'Mean AFR error'), h('dd', {}, fmt(v('afr_error'), 3)),
      h('dt', {}, 'Standard error'), h('dd', {}, fmt(v('std_err'), 4)),
      h('dt', {}, 'Confidence'), h('dd', {}, String(v('confidence') ?? '')),
      h('dt', {}, 'Resolution'), h('dd', {}, fmt(v('resolution'), 3)),
      cell ? [h('dt', {}, 'Verdict'), h('dd', {}, `${cell.verdict.replaceAll('_', ' ')} (${fmt(cell.effective_samples, 1)} effective samples, floor ${cell.min_samples})${cell.clamped ? ', clamped' : ''}${cell.smoothed ? ', smoothed' : ''}`)] : null,
      h('dt', {}, rejLabel), h('dd', {}, Object.entries(rej).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'),
      h('dt', {}, 'Accepted samples (' + c.name + ')'), h('dd', {}, String(c.accepted ?? ''))));
  };
  const grids = h('div', { class: 'grids', id: 'grids' });
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Map' });
  const show = (key) => {
    for (const b of tabs.children) b.setAttribute('aria-pressed', String(b.dataset.metric === key));
    clear(grids);
    const [, title, kind, digits, floor] = METRICS.find((m) => m[0] === key);
    for (const c of cyls) {
      grids.append(h('div', {}, heatmap({ rpm: res.rpm, load, values: c[key] || [], kind, digits, floor, loadLabel: label,
        caption: `${c.name}: ${title}`, name: `${key}:${c.name}`, onCell: (i, j) => showEvidence(c, i, j) })));
    }
  };
  for (const [key, title] of METRICS) tabs.append(h('button', { type: 'button', 'data-metric': key, onclick: () => show(key) }, title));
  const anomalies = res.anomalies || [];
  const kinds = {};
  for (const a of anomalies) kinds[a.kind || '?'] = (kinds[a.kind || '?'] || 0) + 1;
  const anomalyTable = anomalies.length ? h('details', { id: 'anomalies-box' }, h('summary', {}, Object.entries(kinds).map(([k, n]) => `${k.replaceAll('_', ' ')}: ${n}`).join(' · ')), h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'anomalies' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Kind'), h('th', {}, 'Cylinder'), h('th', { class: 'num' }, 'RPM'), h('th', { class: 'num' }, label), h('th', {}, 'Detail'))),
    h('tbody', {}, ...anomalies.slice(0, 200).map((a) => h('tr', {}, h('td', {}, a.kind || ''), h('td', {}, a.cylinder || ''),
      h('td', { class: 'num' }, String(a.rpm ?? '')), h('td', { class: 'num' }, String(pick(a, 'map_kpa', 'load') ?? '')), h('td', { class: 'wrap' }, a.detail || ''))))))) : h('p', { class: 'muted' }, 'No anomalies.');
  page('Run ' + (run.filename || id), summary, h('h2', {}, 'Maps'), tabs, grids, evidence,
    h('h2', {}, 'Channel report'), channelReport(res), h('h2', {}, `Anomalies (${anomalies.length})`), anomalyTable, downloads(files));
  show('percent');
}
function importCard(imp) {
  const files = imp.files || [];
  const vouched = files.filter((f) => f.registered).length;
  return [h('h2', {}, 'Imported from ' + (imp.tool || 'another tool')), h('div', { class: 'card', id: 'import' }, h('dl', { class: 'kv' },
    h('dt', {}, 'Folder'), h('dd', {}, `${imp.folder || ''} (family ${imp.family_letter || '?'}, ${imp.family || ''})`),
    h('dt', {}, 'Their run id'), h('dd', {}, imp.run_id || '–'),
    h('dt', {}, 'Their status'), h('dd', {}, `${imp.status || ''}${imp.last_stage ? ' at ' + imp.last_stage : ''}`),
    h('dt', {}, 'Input log'), h('dd', {}, imp.input ? (imp.input.found ? imp.input.found : `not found (${imp.input.path || ''})`) : '–'),
    h('dt', {}, 'Files'), h('dd', {}, `${files.length} from the folder, ${vouched} vouched for by their manifest (size and SHA-256 checked)`),
    h('dt', {}, 'Apply records'), h('dd', {}, String(imp.applies || 0)),
    h('dt', {}, 'Notes'), h('dd', {}, (imp.notes || []).length ? h('ul', {}, ...imp.notes.map((n) => h('li', {}, n))) : 'none')))];
}
function channelReport(res) {
  const rep = res.channels;
  const rows = [];
  if (rep && typeof rep === 'object') {
    const walk = (o, p) => {
      if (Array.isArray(o)) { o.forEach((x, i) => (typeof x === 'object' && x !== null ? walk(x, `${p}[${i}]`) : rows.push([`${p}[${i}]`, String(x)]))); return; }
      for (const [k, v] of Object.entries(o)) {
        if (v !== null && typeof v === 'object') walk(v, p ? `${p}.${k}` : k); else rows.push([p ? `${p}.${k}` : k, String(v)]);
      }
    };
    walk(rep, '');
  }
  const cylRows = (res.cylinders || []).map((c) => [`${c.name}`, `${c.accepted ?? '?'} samples accepted; rejected ${Object.entries(c.rejected || {}).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; ${c.cells_clamped ?? 0} cells clamped`]);
  const all = [['format', res.format || ''], ['source', res.source || ''], ['load', `${res.load_axis || ''}: ${res.load_reason || ''}`], ['target', res.target || ''], ...cylRows, ...rows.slice(0, 300)];
  return h('div', { class: 'card', id: 'channels' }, h('dl', { class: 'kv' }, ...all.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}
function downloads(files) {
  return [h('h2', {}, 'Downloads'), h('ul', { id: 'downloads' }, ...files.map((f) =>
    h('li', {}, h('a', { href: url(f.url), download: f.name }, f.name), h('span', { class: 'muted' }, ` ${(f.size / 1024).toFixed(1)} KiB · sha256 `), h('span', { class: 'hash' }, (f.sha256 || '').slice(0, 16) + '…'))))];
}

// ---- calibrate -------------------------------------------------------------
async function calibratePage(id) {
  if (!id) {
    const sel = h('select', { id: 'c-run' });
    const out = h('div');
    page('Calibrate', h('form', { class: 'card row', id: 'c-pick', onsubmit: (ev) => { ev.preventDefault(); if (sel.value) location.hash = '#/calibrate/' + sel.value; } },
      h('label', {}, 'Completed run', sel), h('button', { type: 'submit' }, 'Open')), out);
    try {
      const res = await get('api/runs?status=completed&limit=50');
      for (const r of res.runs || []) sel.append(h('option', { value: idOf(r) }, `${r.filename || idOf(r)} · ${date(r.created_at)}`));
      if (!sel.options.length) out.append(h('p', { class: 'muted' }, 'No completed runs yet.'));
    } catch (err) { out.append(errorBox(err)); }
    return;
  }
  let body;
  try { body = await get('api/runs/' + encodeURIComponent(id)); } catch (err) { page('Calibrate', errorBox(err)); return; }
  const run = runOf(body);
  const res = run.results || {};
  const cyl = h('select', { id: 'c-cyl' }, ...(res.cylinders || [{ name: 'Front' }]).map((c) => h('option', { value: String(c.name).toLowerCase() }, c.name)));
  const baseSel = h('select', { id: 'c-base' });
  const refreshBases = (files, chosen) => {
    clear(baseSel);
    for (const f of files.filter((f) => f.name.startsWith('Base_'))) baseSel.append(h('option', { value: String(f.id) }, `${f.name} (#${f.id})`));
    if (chosen) baseSel.value = String(chosen);
  };
  refreshBases(body.files || []);
  const tableFile = h('input', { type: 'file', id: 'c-file', accept: '.csv,.txt' });
  const maxAdj = h('input', { type: 'number', id: 'c-max', placeholder: 'run clamp', step: '0.1', min: '0' });
  const minVE = h('input', { type: 'number', id: 'c-minve', placeholder: 'none', step: '0.1' });
  const maxVE = h('input', { type: 'number', id: 'c-maxve', placeholder: 'none', step: '0.1' });
  const comment = h('input', { type: 'text', id: 'c-comment', placeholder: 'optional' });
  const out = h('div', { id: 'c-out', 'aria-live': 'polite' });
  const result = h('div', { id: 'c-result' });
  const reqBody = () => {
    const b = { base_file_id: Number(baseSel.value), cylinder: cyl.value };
    if (maxAdj.value) b.max_adjust_percent = Number(maxAdj.value);
    if (minVE.value) b.min_ve = Number(minVE.value);
    if (maxVE.value) b.max_ve = Number(maxVE.value);
    if (comment.value) b.comment = comment.value;
    return b;
  };
  const hashes = (m) => h('dl', { class: 'kv manifest' }, ...[
    ['base_sha256', 'Base table'], ['requested_correction_sha256', 'Requested correction'], ['effective_correction_sha256', 'Effective correction'], ['result_sha256', 'Result table'],
  ].flatMap(([k, t]) => [h('dt', {}, t), h('dd', { class: 'hash', 'data-hash': k }, (m && m[k]) || '')]),
  h('dt', {}, 'Cells changed / clamped / railed / capped'), h('dd', {}, `${m.cells_changed ?? ''} / ${m.cells_clamped ?? 0} / ${m.cells_railed ?? 0} / ${m.cells_capped ?? 0}`));
  const diffView = (diff) => {
    const cell = (c) => ({ rpm: pick(c, 'rpm', 'RPM'), load: pick(c, 'map_kpa', 'map', 'MAP', 'load'), before: pick(c, 'before', 'Before'), after: pick(c, 'after', 'After'), limited: pick(c, 'limited', 'Limited') || '' });
    const cells = diff.map(cell);
    const rpm = res.rpm || [...new Set(cells.map((c) => c.rpm))].sort((a, b) => a - b);
    const load = loadAxis(res).load.length ? loadAxis(res).load : [...new Set(cells.map((c) => c.load))].sort((a, b) => a - b);
    const grid = rpm.map(() => load.map(() => null));
    const marks = new Set();
    for (const c of cells) {
      const i = rpm.indexOf(c.rpm), j = load.indexOf(c.load);
      if (i < 0 || j < 0) continue;
      grid[i][j] = c.before ? +((c.after / c.before - 1) * 100).toFixed(3) : null;
      if (c.limited) marks.add(i + ',' + j);
    }
    return [h('h3', {}, 'Change % (outlined: clamped, railed or capped)'),
      heatmap({ rpm, load, values: grid, kind: 'diverging', digits: 2, name: 'diff', marks, loadLabel: 'kPa' }),
      h('details', {}, h('summary', {}, `Cells (${cells.length})`), h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'diff' },
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'RPM'), h('th', { class: 'num' }, 'Load'), h('th', { class: 'num' }, 'Old'), h('th', { class: 'num' }, 'New'), h('th', { class: 'num' }, 'Change'), h('th', {}, 'Limited'))),
        h('tbody', {}, ...cells.map((c) => h('tr', { class: c.limited ? 'limited' : '' }, h('td', { class: 'num' }, String(c.rpm)), h('td', { class: 'num' }, String(c.load)),
          h('td', { class: 'num' }, fmt(c.before, 2)), h('td', { class: 'num' }, fmt(c.after, 3)), h('td', { class: 'num' }, fmt(c.after - c.before, 3)), h('td', {}, c.limited)))))))];
  };
  const act = (fn) => async (ev) => { ev && ev.preventDefault(); clear(out); try { await fn(); } catch (err) { out.append(errorBox(err)); } };
  const uploadBtn = h('button', { type: 'button', id: 'c-upload', onclick: act(async () => {
    if (!tableFile.files[0]) throw new Error('choose a base VE table file (CSV) first');
    const fd = new FormData(); fd.append('file', tableFile.files[0], tableFile.files[0].name);
    const r = await upload('api/runs/' + id + '/tables', fd, () => {});
    const fresh = await get('api/runs/' + id + '/files');
    refreshBases(fresh.files || [], r.file.id);
    out.append(h('p', {}, `Uploaded ${r.file.name}: ${r.rows}×${r.cols} cells, sha256 `, h('span', { class: 'hash' }, r.file.sha256)));
  }) }, 'Upload base table');
  const dry = h('button', { type: 'button', id: 'c-dry', onclick: act(async () => {
    const r = await post('api/runs/' + id + '/dry-run', reqBody());
    clear(result).append(h('h2', {}, `Dry run: ${pick(r, 'cells_modified') ?? ''} cells would change`), hashes(r.manifest || {}), ...diffView(r.diff || []));
  }) }, 'Dry run');
  const apply = h('button', { type: 'button', id: 'c-apply', onclick: act(async () => {
    const r = await post('api/runs/' + id + '/apply', reqBody());
    const files = r.files || [];
    clear(result).append(h('h2', { id: 'c-applied' }, `Applied: ${pick(r, 'cells_modified') ?? ''} cells changed (apply #${r.apply_id})`), hashes(r.manifest || {}),
      h('ul', {}, ...files.map((f) => h('li', {}, h('a', { href: url(f.url), download: f.name }, f.name), ' ', h('span', { class: 'hash' }, f.sha256)))));
    result.dataset.baseSha = (r.manifest || {}).base_sha256 || '';
  }) }, 'Apply');
  const rollback = h('button', { type: 'button', class: 'secondary', id: 'c-rollback', onclick: act(async () => {
    const r = await post('api/runs/' + id + '/rollback', { cylinder: cyl.value });
    const f = r.file || {};
    const want = result.dataset.baseSha;
    clear(result).append(h('h2', { id: 'c-rolledback' }, 'Rolled back'), h('dl', { class: 'kv' },
      h('dt', {}, 'Restored base sha256'), h('dd', { class: 'hash', id: 'c-restored' }, r.base_sha256 || ''),
      want ? [h('dt', {}, 'Matches the applied base'), h('dd', { id: 'c-match' }, want === r.base_sha256 ? 'yes' : 'NO')] : null,
      h('dt', {}, 'Restored table'), h('dd', {}, f.url ? h('a', { href: url(f.url), download: f.name }, f.name) : '')));
  }) }, 'Roll back');
  page('Calibrate ' + (run.filename || id),
    h('p', {}, h('a', { href: '#/run/' + id }, '← the run')),
    h('div', { class: 'card' }, h('h2', {}, '1. Base VE table'), h('div', { class: 'row' }, h('label', {}, 'Base table file (CSV on the run’s grid)', tableFile), uploadBtn),
      h('div', { class: 'row' }, h('label', {}, 'Uploaded base', baseSel), h('label', {}, 'Cylinder', cyl))),
    h('div', { class: 'card' }, h('h2', {}, '2. Limits'), h('div', { class: 'row' }, h('label', {}, 'Max adjust %', maxAdj), h('label', {}, 'Min VE', minVE), h('label', {}, 'Max VE', maxVE), h('label', {}, 'Comment', comment))),
    h('div', { class: 'row' }, dry, apply, rollback), out, result);
}

// ---- live ------------------------------------------------------------------
const LIVE_RPM = [1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500];
const LIVE_MAP = [20, 30, 40, 50, 60, 70, 80, 90, 100];
function nearest(axis, v) { let b = 0; for (let i = 1; i < axis.length; i++) if (Math.abs(axis[i] - v) < Math.abs(axis[b] - v)) b = i; return b; }
async function livePage() {
  const provs = h('div', { id: 'providers' }, h('p', { class: 'muted' }, 'Looking for JetDrive providers…'));
  const state = h('span', { id: 'live-state', class: 'badge' }, 'connecting');
  const gauges = h('div', { class: 'gauges', id: 'gauges' });
  const trace = h('canvas', { class: 'trace', width: '900', height: '140', 'aria-label': 'RPM and MAP trace' });
  const cover = h('div', { id: 'coverage' });
  const hits = LIVE_RPM.map(() => LIVE_MAP.map(() => 0));
  let samples = 0, last = null, dirty = true;
  const hist = [];
  const gauge = (id, name, unit) => h('div', { class: 'gauge' }, h('div', { class: 'n' }, name), h('div', { class: 'v', id: 'g-' + id }, '–'), h('div', { class: 'n' }, unit));
  const tune = h('div', { id: 'tuning' });
  page('Live', h('p', {}, 'Stream ', state, ' ', h('span', { class: 'muted', id: 'live-count' }, '')), provs, gauges,
    h('h2', {}, 'Trace (RPM, MAP ×50)'), trace, h('h2', {}, 'Coverage (samples per cell, this page)'), cover,
    h('h2', {}, 'Tuning session'), tune);
  if (session && session.features && !session.features.jetdrive) {
    state.textContent = 'off';
    clear(provs).append(h('p', { class: 'notice', id: 'jd-off' }, 'JetDrive is not configured on this server: start it with JETDRIVE_ENABLED=true (examples/server) or set httpapi.Config.JetDrive.'));
    return;
  }
  try {
    const p = await get('api/jetdrive/providers');
    const list = p.providers || [];
    clear(provs).append(list.length ? h('div', { class: 'scroll' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Provider'), h('th', {}, 'Address'), h('th', { class: 'num' }, 'Messages'), h('th', {}, 'Channels'), h('th', {}, 'State'))),
      h('tbody', {}, ...list.map((v) => h('tr', {}, h('td', {}, v.name || String(v.host)), h('td', {}, v.addr || ''), h('td', { class: 'num' }, String(v.messages ?? '')),
        h('td', { class: 'wrap' }, (v.channels || []).map((c) => `${c.name}${c.field ? ' → ' + c.field : ''}`).join(', ')), h('td', {}, v.stale ? 'stale' : 'live'))))))
      : h('p', { class: 'muted' }, 'No JetDrive provider seen yet.'));
  } catch (err) { clear(provs).append(errorBox(err)); if (err.status === 503 || err.status === 401 || err.status === 403) { state.textContent = 'unavailable'; return; } }
  // The live tuning session (api/jetdrive/session): every pull recorded as
  // a run and analyzed; its corrections so far, streamed as snapshots.
  let sessionES = null;
  const showSession = (v) => {
    clear(tune);
    if (!v || v.state === 'none') {
      const afr = h('input', { id: 'live-target', type: 'number', step: '0.1', min: '9', max: '18', value: '13.2', 'aria-label': 'Target AFR' });
      const start = async () => {
        try { showSession(await post('api/jetdrive/session', { target_afr: Number(afr.value) })); follow(); } catch (err) { tune.append(errorBox(err)); }
      };
      tune.append(h('p', { class: 'muted' }, 'No session is recording. JetDrive rarely carries an AFR target: give the one to tune to.'),
        h('label', {}, 'Target AFR ', afr), ' ', h('button', { type: 'button', id: 'live-start', onclick: start }, 'Start session'));
      return;
    }
    const stop = async () => { try { showSession(await post('api/jetdrive/session/stop', {})); } catch (err) { tune.append(errorBox(err)); } };
    const save = async () => {
      try { const r = await post('api/jetdrive/session/save', {}); const id = pick(r, 'run_id', 'runId'); if (id) location.hash = '#/runs/' + id; } catch (err) { tune.append(errorBox(err)); }
    };
    const res = v.result;
    tune.append(h('p', { id: 'live-session-state' }, `Session ${v.state}: ${(v.pulls || []).length} pulls recorded, ${(v.samples && v.samples.analyzed) ?? 0} samples analyzed; target ${v.target || ''}`),
      v.state === 'recording' ? h('button', { type: 'button', id: 'live-stop', onclick: stop }, 'Stop') : null, ' ',
      res ? h('button', { type: 'button', id: 'live-save', onclick: save }, 'Save as a run') : null);
    if (res && res.cylinders) {
      const ax = loadAxis(res);
      for (const c of res.cylinders) {
        tune.append(heatmap({ rpm: res.rpm, load: ax.load, values: c.percent || [], kind: 'diverging', digits: 1, floor: 2,
          name: 'live-correction-' + c.name, loadLabel: ax.label, caption: `${c.name}: VE correction so far (%)` }));
      }
    }
  };
  const follow = () => {
    if (sessionES) return;
    sessionES = new EventSource(url('api/jetdrive/session/stream'), { withCredentials: true });
    sessionES.addEventListener('snapshot', (ev) => { try { showSession(JSON.parse(ev.data)); } catch { /* a partial event */ } });
    sessionES.addEventListener('end', () => { sessionES.close(); sessionES = null; });
    sessionES.addEventListener('error', () => { if (sessionES && sessionES.readyState === EventSource.CLOSED) sessionES = null; });
  };
  try {
    const v = await get('api/jetdrive/session');
    showSession(v);
    if (v && v.state === 'recording') follow();
  } catch (err) {
    tune.append(errorBox(err)); // 409: another replica records, and the error names it
  }
  const es = new EventSource(url('api/jetdrive/live/stream'), { withCredentials: true });
  let timer = 0;
  const draw = () => {
    if (!dirty) return; dirty = false;
    clear(cover).append(heatmap({ rpm: LIVE_RPM, load: LIVE_MAP, values: hits.map((r) => r.map((v) => v || null)), kind: 'sequential', digits: 0, name: 'live-coverage', loadLabel: 'kPa', caption: `${samples} samples` }));
    document.getElementById('live-count') && (document.getElementById('live-count').textContent = `${samples} samples`);
    if (last) {
      const set = (id, v, d) => { const el = document.getElementById('g-' + id); if (el) el.textContent = typeof v === 'number' ? v.toFixed(d) : '–'; };
      clear(gauges).append(gauge('rpm', 'RPM', 'rev/min'), gauge('map', 'MAP', 'kPa'), gauge('tps', 'Throttle', '%'), gauge('torque', 'Torque', 'ft·lb'), gauge('hp', 'Power', 'hp'),
        ...(last.afr || []).map((_, i) => gauge('afr' + i, 'AFR cyl ' + (i + 1), 'AFR')));
      set('rpm', last.rpm, 0); set('map', last.map_kpa, 1); set('tps', last.tps, 1); set('torque', last.torque, 1); set('hp', pick(last, 'hp', 'power'), 1);
      (last.afr || []).forEach((v, i) => set('afr' + i, v, 2));
    }
    const ctx = trace.getContext('2d');
    ctx.clearRect(0, 0, trace.width, trace.height);
    const line = (key, scale, color) => {
      ctx.strokeStyle = color; ctx.beginPath();
      hist.forEach((s, i) => { const y = trace.height - Math.min(trace.height, (s[key] || 0) * scale); const x = (i / 300) * trace.width; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.stroke();
    };
    line('rpm', trace.height / 8000, '#1d4f91'); line('map', trace.height / 8000 * 50, '#b3261e');
  };
  es.addEventListener('open', () => { state.textContent = 'live'; });
  es.addEventListener('error', () => { state.textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'; });
  es.addEventListener('values', (ev) => {
    let v; try { v = JSON.parse(ev.data); } catch { return; }
    last = v; samples++; dirty = true;
    const rpm = v.rpm, map = pick(v, 'map_kpa', 'map');
    if (typeof rpm === 'number' && typeof map === 'number' && rpm > 0) hits[nearest(LIVE_RPM, rpm)][nearest(LIVE_MAP, map)]++;
    hist.push({ rpm: rpm || 0, map: map || 0 }); if (hist.length > 300) hist.shift();
  });
  timer = setInterval(draw, 250);
  draw();
  leave = () => { es.close(); clearInterval(timer); if (sessionES) sessionES.close(); };
}

// ---- jetstream -------------------------------------------------------------
async function jetstreamPage() {
  const status = h('div', { id: 'js-status' }, h('p', { class: 'muted' }, 'Loading…'));
  const runs = h('div', { id: 'js-runs' });
  const out = h('div', { 'aria-live': 'polite' });
  page('Jetstream', status, h('p', {}, h('button', { type: 'button', id: 'js-sync', onclick: async () => {
    clear(out);
    try { const r = await post('api/jetstream/sync'); out.append(h('p', {}, `${r.new_runs_found ?? 0} new runs found.`)); jetstreamPage(); } catch (err) { out.append(errorBox(err)); }
  } }, 'Sync now')), out, h('h2', {}, 'Recent Jetstream runs'), runs);
  if (session && session.features && !session.features.jetstream) {
    clear(status).append(h('p', { class: 'notice', id: 'js-off' }, 'Jetstream is not configured on this server: start it with JETSTREAM_ENABLED=true and the API settings (examples/server) or set httpapi.Config.Jetstream.'));
    document.getElementById('js-sync').disabled = true;
  } else try {
    const s = await get('api/jetstream/status');
    clear(status).append(h('div', { class: 'card' }, h('dl', { class: 'kv' }, ...Object.entries(s).flatMap(([k, v]) => [h('dt', {}, k.replaceAll('_', ' ')), h('dd', {}, Array.isArray(v) ? v.join(', ') || '–' : v === null ? '–' : String(v))]))));
  } catch (err) { clear(status).append(errorBox(err)); }
  try {
    const r = await get('api/runs?source=jetstream&limit=20');
    const list = r.runs || [];
    runs.append(list.length ? h('ul', {}, ...list.map((x) => h('li', {}, h('a', { href: '#/run/' + idOf(x) }, x.jetstream_id || x.filename || idOf(x)), ' ', h('span', { class: 'badge ' + statusOf(x) }, statusOf(x)), ' ', date(x.created_at))))
      : h('p', { class: 'muted' }, 'No Jetstream runs yet.'));
  } catch (err) { runs.append(errorBox(err)); }
}

// ---- router ----------------------------------------------------------------
async function route() {
  leave(); leave = () => {};
  const raw = location.hash.replace(/^#\/?/, '') || 'runs';
  const [path, query] = raw.split('?');
  const [name, arg] = path.split('/');
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.page === (name === 'run' ? 'runs' : name)) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (needLogin()) { showLogin(); return; }
  const params = new URLSearchParams(query || '');
  switch (name) {
    case 'runs': runsPage(params); break;
    case 'upload': uploadPage(); break;
    case 'run': await runPage(decodeURIComponent(arg || '')); break;
    case 'calibrate': await calibratePage(arg ? decodeURIComponent(arg) : ''); break;
    case 'live': await livePage(); break;
    case 'jetstream': await jetstreamPage(); break;
    default: page('Not found', h('p', {}, 'No such page. ', h('a', { href: '#/runs' }, 'Go to the runs.')));
  }
  main.dataset.page = name;
}

window.addEventListener('hashchange', route);
(async () => {
  try { session = await get('api/session'); } catch { session = null; }
  renderWho();
  await route();
  document.body.dataset.ready = 'true';
})();
