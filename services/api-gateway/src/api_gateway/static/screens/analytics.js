// Farm analytics: how the farm did over 24 hours, 7 or 30 days, drawn from the queue's jobs and the
// printer gateway's state history (GET /analytics/jobs and /analytics/printers).
import { barChart, PALETTE, stackedRows } from '../charts.js';
import { field, fmtNumber, h, replace, select, showError } from '../dom.js';
import { setQuery } from '../router.js';

const PERIODS = [['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const STATES = [
  ['printing', 'Printing', '#1d7a3a'],
  ['paused', 'Paused', '#a15c00'],
  ['idle', 'Idle', '#8fa3bf'],
  ['error', 'Error', '#b3261e'],
  ['offline', 'Offline', '#5b6475'],
];
const MAX_ORDERS = 20;
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** 3 h 05 min, 12 min, 40 s: durations as an operator reads them. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function bucketLabel(start, bucket) {
  const d = new Date(start);
  return bucket === 'hour'
    ? `${String(d.getUTCHours()).padStart(2, '0')}:00`
    : `${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

function stat(label, value, detail) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label),
    h('strong', { class: 'stat-value' }, value), detail ? h('span', { class: 'muted' }, detail) : null);
}

export async function render(root, { query, scope }) {
  const { api } = scope;
  let period = PERIODS.some(([p]) => p === query.get('period')) ? query.get('period') : '24h';
  const picker = select('period', PERIODS, period);
  picker.addEventListener('change', () => {
    period = picker.value;
    setQuery({ period });
    scope.run(load(), showError);
  });
  const summary = h('section', { class: 'stats', 'aria-label': 'Summary' });
  const charts = h('div', { class: 'charts' });
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Farm analytics'), field('Period', picker)),
    h('p', { class: 'muted' }, 'Jobs, filament, queue wait, order lead times and printer utilisation, from the farm\'s own records (times in UTC).'),
    summary, charts);

  async function load() {
    const [jobs, printers] = await Promise.all([
      api.get('/analytics/jobs', { period }),
      api.get('/analytics/printers', { period }),
    ]);
    if (!scope.alive) return;
    draw(jobs, printers);
  }

  function draw(jobs, printers) {
    const grams = Object.values(jobs.grams).reduce((a, b) => a + b, 0);
    const fleetKnown = printers.printers.reduce((sum, p) => sum + Object.values(p.seconds).reduce((a, b) => a + b, 0), 0);
    const fleetPrinting = printers.printers.reduce((sum, p) => sum + p.seconds.printing, 0);
    replace(summary,
      stat('Jobs completed', String(jobs.completed)),
      stat('Jobs failed', String(jobs.failed)),
      stat('Filament used', `${fmtNumber(grams)} g`),
      stat('Average queue wait', fmtDuration(jobs.queue_wait.average_seconds), plural(jobs.queue_wait.jobs, 'job started', 'jobs started')),
      stat('Click to complete', fmtDuration(jobs.average_click_to_complete_seconds), plural(jobs.orders.length, 'order completed', 'orders completed')),
      stat('Fleet utilisation', fleetKnown ? `${fmtNumber((100 * fleetPrinting) / fleetKnown)} %` : '—', 'time printing'));

    const labels = jobs.series.map((b) => bucketLabel(b.start, jobs.bucket));
    const per = jobs.bucket === 'hour' ? 'per hour' : 'per day';
    const materials = [...new Set(jobs.series.flatMap((b) => Object.keys(b.grams)))].sort();
    const orders = jobs.orders.slice(0, MAX_ORDERS).reverse();
    const [leadUnit, leadName] = Math.max(0, ...orders.map((o) => o.seconds)) >= 7200 ? [3600, 'h'] : [60, 'min'];
    replace(charts,
      h('section', { class: 'panel' }, barChart({
        title: `Jobs completed and failed ${per}`,
        labels,
        series: [
          { name: 'Completed', values: jobs.series.map((b) => b.completed), color: '#1d7a3a' },
          { name: 'Failed', values: jobs.series.map((b) => b.failed), color: '#b3261e' },
        ],
      })),
      h('section', { class: 'panel' }, barChart({
        title: `Filament used ${per} by material`,
        labels,
        stacked: true,
        legend: true,
        unit: ' g',
        format: (v) => fmtNumber(v),
        series: materials.map((m, i) => ({ name: m, values: jobs.series.map((b) => b.grams[m] || 0), color: PALETTE[i % PALETTE.length] })),
      })),
      h('section', { class: 'panel' }, stackedRows({
        title: 'Printer utilisation (time in each state, % printing)',
        share: true,
        format: (v) => fmtDuration(v),
        series: STATES.map(([, name, color]) => ({ name, color })),
        items: printers.printers.map((p) => ({
          label: p.name,
          parts: STATES.map(([key]) => p.seconds[key]),
          note: p.utilisation_percent === null ? 'no data' : `${fmtNumber(p.utilisation_percent)} %`,
        })),
      })),
      h('section', { class: 'panel' }, stackedRows({
        title: 'Why jobs failed',
        series: [{ name: 'Jobs', color: '#b3261e' }],
        items: jobs.failure_reasons.map((r) => ({ label: r.reason, parts: [r.count] })),
      })),
      h('section', { class: 'panel' }, barChart({
        title: `Click to complete, the last ${plural(orders.length, 'order', 'orders')} completed`,
        labels: orders.map((o) => o.order_number),
        format: (v) => fmtNumber(v, 1),
        unit: ` ${leadName}`,
        series: [{ name: 'Click to complete', values: orders.map((o) => o.seconds / leadUnit), color: '#1f5fbf' }],
      })),
      h('section', { class: 'panel' },
        h('h2', {}, 'Queue wait'),
        h('p', {}, `Jobs started: ${jobs.queue_wait.jobs}. Average wait from the click to the start: `,
          h('strong', {}, fmtDuration(jobs.queue_wait.average_seconds)), `; longest ${fmtDuration(jobs.queue_wait.max_seconds)}.`)));
  }

  const reload = scope.debounce(() => scope.run(load(), showError), 2000);
  scope.on('job.updated', reload);
  scope.on('printer.updated', reload);
  scope.on('resync', reload);
  await load();
}
