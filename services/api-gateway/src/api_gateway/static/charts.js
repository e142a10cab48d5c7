// A small SVG chart module of our own (no library, no CDN): vertical bar charts over time (stacked or
// side by side) and horizontal stacked bars per item. Colours are SVG presentation attributes, never inline
// styles, so the strict Content-Security-Policy holds. Each chart is a <figure> whose SVG is an image
// named by its caption, with the same figures in a table for screen readers (and a legend for everyone).
import { h, uid } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#1f5fbf', '#1d7a3a', '#a15c00', '#b3261e', '#6b4fbb', '#00796b', '#8a5a44', '#5b6475'];
const AXIS = '#5b6475';
const GRID = '#d8dce3';

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Round numbers for an axis: 0 and up to 4 steps of 1, 2 or 5 × 10^n reaching at least `max`. */
export function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough);
  const ticks = [];
  for (let v = 0; v < max + step; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function legend(series) {
  return h('ul', { class: 'chart-legend' }, series.map((s) => h('li', {},
    svgSwatch(s.color), ` ${s.name}`)));
}

function svgSwatch(color) {
  return svg('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true', focusable: 'false' },
    svg('rect', { width: 12, height: 12, rx: 2, fill: color }));
}

function dataTable(caption, head, rows) {
  // Wrapped: a table is never narrower than its content, so it cannot be the 1-pixel sr-only box itself.
  return h('div', { class: 'sr-only' }, h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map(([label, ...values]) => h('tr', {}, h('th', { scope: 'row' }, label),
      values.map((v) => h('td', {}, v)))))));
}

function figure(title, kind, chart, series, table, empty) {
  const id = uid('chart');
  const hasData = !empty;
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-labelledby', id);
  return h('figure', { class: 'chart', dataset: { chart: kind, empty: String(!hasData) } },
    h('figcaption', { id }, title),
    hasData ? [chart, series ? legend(series) : null, table] : h('p', { class: 'muted' }, 'Nothing in this period.'));
}

/**
 * Bars over time. `labels`: one per bucket; `series`: [{name, values, color?}]; `stacked` piles the
 * series per bucket, otherwise they stand side by side. `format(v)` writes a value (tooltips, table).
 */
export function barChart({ title, labels, series, stacked = false, format = String, unit = '', legend: keyed }) {
  const colored = series.map((s, i) => ({ ...s, color: s.color || PALETTE[i % PALETTE.length] }));
  const width = 640;
  const height = 240;
  const left = 44;
  const bottom = 28;
  const top = 10;
  const plotW = width - left - 8;
  const plotH = height - top - bottom;
  const totals = labels.map((_, i) => (stacked
    ? colored.reduce((sum, s) => sum + (s.values[i] || 0), 0)
    : Math.max(0, ...colored.map((s) => s.values[i] || 0))));
  const ticks = niceTicks(Math.max(0, ...totals));
  const ceiling = ticks[ticks.length - 1];
  const y = (v) => top + plotH - (v / ceiling) * plotH;
  const slot = plotW / Math.max(1, labels.length);
  const barW = Math.max(1, slot * 0.7);
  const every = Math.ceil(labels.length / 8);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', preserveAspectRatio: 'xMidYMid meet' },
    ticks.map((t) => svg('g', {},
      svg('line', { x1: left, x2: width - 8, y1: y(t), y2: y(t), stroke: GRID }),
      svg('text', { x: left - 6, y: y(t) + 4, 'text-anchor': 'end', 'font-size': 11, fill: AXIS }, `${format(t)}${unit}`))),
    labels.map((label, i) => {
      const x0 = left + i * slot + (slot - barW) / 2;
      let base = 0;
      const bars = colored.map((s, k) => {
        const v = s.values[i] || 0;
        if (v <= 0) return null;
        let x = x0;
        let w = barW;
        let y0 = y(v);
        let barH = y(0) - y(v);
        if (stacked) {
          y0 = y(base + v);
          barH = y(base) - y(base + v);
          base += v;
        } else {
          w = barW / colored.length;
          x = x0 + k * w;
        }
        return svg('rect', { class: 'bar', x, y: y0, width: Math.max(0.5, w - 0.5), height: Math.max(0.5, barH), fill: s.color, 'data-value': v },
          svg('title', {}, `${label} · ${s.name}: ${format(v)}${unit}`));
      });
      const tick = i % every === 0
        ? svg('text', { x: left + i * slot + slot / 2, y: height - 10, 'text-anchor': 'middle', 'font-size': 11, fill: AXIS }, label)
        : null;
      return svg('g', {}, bars, tick);
    }),
    svg('line', { x1: left, x2: width - 8, y1: y(0), y2: y(0), stroke: AXIS }));
  const rows = labels.map((label, i) => [label, ...colored.map((s) => `${format(s.values[i] || 0)}${unit}`)]);
  const empty = totals.every((t) => t <= 0);
  return figure(title, 'bars', chart, (keyed ?? colored.length > 1) ? colored : null,
    dataTable(title, ['', ...colored.map((s) => s.name)], rows), empty);
}

/**
 * One horizontal bar per item, split into parts: `items` [{label, parts: [values in `series` order]}],
 * `series` [{name, color?}]. With `share` each bar is 100 % of its item (e.g. time in each state).
 */
export function stackedRows({ title, items, series, share = false, format = String, unit = '' }) {
  const colored = series.map((s, i) => ({ ...s, color: s.color || PALETTE[i % PALETTE.length] }));
  const width = 640;
  const rowH = 26;
  const labelW = 150;
  const plotW = width - labelW - 72;
  const height = Math.max(1, items.length) * rowH + 6;
  const totals = items.map((it) => it.parts.reduce((a, b) => a + (b || 0), 0));
  const scale = Math.max(0, ...totals) || 1;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', preserveAspectRatio: 'xMidYMid meet' },
    items.map((item, i) => {
      const total = totals[i];
      const full = share ? total || 1 : scale;
      let x = labelW;
      const yTop = 4 + i * rowH;
      const parts = item.parts.map((v, k) => {
        if (!(v > 0)) return null;
        const w = (v / full) * plotW;
        const rect = svg('rect', { class: 'bar', x, y: yTop, width: Math.max(0.5, w), height: rowH - 8, fill: colored[k].color, 'data-value': v },
          svg('title', {}, `${item.label} · ${colored[k].name}: ${format(v)}${unit}`));
        x += w;
        return rect;
      });
      const name = item.label.length > 22 ? `${item.label.slice(0, 21)}…` : item.label;
      return svg('g', {},
        svg('text', { x: labelW - 6, y: yTop + rowH / 2, 'text-anchor': 'end', 'font-size': 12, fill: AXIS }, name),
        parts,
        svg('text', { x: labelW + plotW + 4, y: yTop + rowH / 2, 'font-size': 11, fill: AXIS },
          item.note ?? `${format(total)}${unit}`));
    }));
  const rows = items.map((item) => [item.label, ...item.parts.map((v) => `${format(v || 0)}${unit}`)]);
  const empty = totals.every((t) => t <= 0);
  return figure(title, 'rows', chart, colored.length > 1 ? colored : null,
    dataTable(title, ['', ...colored.map((s) => s.name)], rows), empty);
}
