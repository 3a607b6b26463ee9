// heatmap.js: tables of RPM x load cells coloured on a diverging scale
// centred on zero (blue below, red above) or a sequential one (counts).
import { h } from './dom.js';

// The scales are internal/colorscale's (its package doc is the
// definition), so a cell here has the colour it has in examples/analyze's
// pictures: five RdBu stops for diverging values, three for coverage,
// interpolated per channel in sRGB, on a limit rounded up to 1, 2 or 5
// times a power of ten.
const DIV = [[-1, [0x21, 0x66, 0xac]], [-0.5, [0x92, 0xc5, 0xde]], [0, [0xf7, 0xf7, 0xf7]], [0.5, [0xf4, 0xa5, 0x82]], [1, [0xb2, 0x18, 0x2b]]];
const SEQ = [[0, [0xf7, 0xf7, 0xf7]], [0.5, [0xa6, 0xdb, 0xa0]], [1, [0x1b, 0x78, 0x37]]];
function at(stops, t) {
  for (let i = 1; i < stops.length; i++) {
    const [t1, c1] = stops[i];
    if (t <= t1 || i === stops.length - 1) {
      const [t0, c0] = stops[i - 1];
      const u = Math.max(0, Math.min(1, (t - t0) / (t1 - t0)));
      return c0.map((v, k) => Math.round(v + (c1[k] - v) * u));
    }
  }
  return stops[0][1];
}
// limit rounds the largest magnitude up to 1, 2 or 5 times a power of ten
// (at least floor), as colorscale.Limit does.
export function limit(m, floor) {
  const v = Math.max(m, floor);
  if (!(v > 0)) return floor;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 2, 5, 10]) if (k * p >= v - 1e-12) return k * p;
  return 10 * p;
}

// diverging returns the colour of v on a scale symmetric about zero
// reaching full saturation at +-span.
export function diverging(v, span) {
  const t = span > 0 ? Math.max(-1, Math.min(1, v / span)) : 0;
  return at(DIV, t);
}
export function sequential(v, max) {
  const t = max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
  return at(SEQ, t);
}
const CONF = { none: [240, 241, 243], low: [253, 219, 199], medium: [209, 229, 240], high: [146, 197, 222] };
function textOn(rgb) { return (rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114) < 140 ? '#fff' : '#111'; }

// fmt writes a cell's value for display.
export function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '';
  if (typeof v !== 'number') return String(v);
  return v.toFixed(digits);
}

// heatmap builds a table. opts: rpm, load (axes), values[r][c], kind
// ('diverging' | 'sequential' | 'category'), digits, caption, name (for
// tests: data-grid), loadLabel, onCell(r, c, td), marks (Set of "r,c").
export function heatmap(opts) {
  const { rpm, load, values, kind = 'diverging', digits = 1 } = opts;
  let span = 0, max = 0;
  for (const row of values) for (const v of row) {
    if (typeof v === 'number' && Number.isFinite(v)) { span = Math.max(span, Math.abs(v)); max = Math.max(max, v); }
  }
  if (kind === 'diverging') span = limit(span, opts.floor || 0);
  const head = h('tr', {}, h('th', { scope: 'col' }, 'RPM \\ ' + (opts.loadLabel || 'load')), ...load.map((l) => h('th', { scope: 'col' }, String(l))));
  const rows = rpm.map((r, i) => {
    const cells = load.map((l, j) => {
      const v = values[i] ? values[i][j] : null;
      const td = h('td', { 'data-rpm': String(r), 'data-load': String(l), 'data-row': String(i), 'data-col': String(j) }, fmt(v, digits));
      if (v === null || v === undefined) { td.className = 'empty'; td.dataset.value = ''; }
      else {
        td.dataset.value = String(v);
        let rgb;
        if (kind === 'category') rgb = CONF[v] || CONF.none;
        else if (kind === 'sequential') rgb = sequential(v, max);
        else rgb = diverging(v, span);
        td.style.backgroundColor = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
        td.style.color = textOn(rgb);
      }
      if (opts.marks && opts.marks.has(i + ',' + j)) td.classList.add('clamped');
      if (opts.onCell) {
        // One tab stop per table (the roving cell); arrows move inside it.
        td.tabIndex = i === 0 && j === 0 ? 0 : -1;
        td.setAttribute('role', 'button');
        td.setAttribute('aria-label', `${r} RPM, ${l} ${opts.loadLabel || ''}: ${fmt(v, digits) || 'no data'}`);
        const act = () => { td.closest('table').querySelectorAll('td.sel').forEach((x) => x.classList.remove('sel')); td.classList.add('sel'); opts.onCell(i, j, td); };
        td.addEventListener('click', act);
        td.addEventListener('mouseenter', act);
        td.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(); return; }
          const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
          if (!step) return;
          ev.preventDefault();
          const next = td.closest('tbody').querySelector(`td[data-row="${i + step[0]}"][data-col="${j + step[1]}"]`);
          if (!next) return;
          td.tabIndex = -1; next.tabIndex = 0; next.focus(); next.click();
        });
      }
      return td;
    });
    return h('tr', {}, h('th', { scope: 'row' }, String(r)), ...cells);
  });
  const t = h('table', { class: 'heat', 'data-grid': opts.name || '' },
    opts.caption ? h('caption', {}, opts.caption) : null, h('thead', {}, head), h('tbody', {}, ...rows));
  const legend = kind === 'category'
    ? h('div', { class: 'legend' }, 'confidence: none · low · medium · high')
    : kind === 'sequential'
      ? h('div', { class: 'legend' }, '0', h('span', { class: 'bar seq' }), fmt(max, 0))
      : h('div', { class: 'legend' }, fmt(-span, digits), h('span', { class: 'bar div' }), '+' + fmt(span, digits), ' (0 is white)');
  return h('div', { class: 'scroll' }, t, legend);
}
