// Print queue: jobs by state in tabs, filter by order, cancel / retry / priority, "why is this waiting".
import { path } from '../api.js';
import { badge, cell, field, fmtNumber, h, openDialog, progress, replace, showError, swatch, table } from '../dom.js';
import { setQuery } from '../router.js';

const TABS = [
  ['queued', 'Queued', ['queued', 'slicing', 'assigned']],
  ['progress', 'In progress', ['printing', 'paused']],
  ['completed', 'Completed', ['completed']],
  ['cancelled', 'Cancelled', ['cancelled']],
  ['errored', 'Errored', ['failed']],
  ['all', 'All', []],
];

const WHY = {
  matched: 'would take it now',
  offline: 'is offline',
  busy: 'is busy with another job',
  bed_not_clear: 'has a part on its bed (waiting for “bed cleared”)',
  material_mismatch: 'does not hold the material this job needs',
  tag_mismatch: 'does not carry the tags this job asks for',
  not_target_printer: 'is not the printer this job was sent to',
  file_mismatch: 'has no file sliced for its model',
  slicing: 'waits for the file being sliced for its model',
};

/** What the job prints: the slicer profile (or the file's kind) and the estimate, e.g. "X1C 0.20mm · 42 min · 9.5 g". */
function fileLabel(file) {
  return [file.profile || `.${file.kind}`, file.print_minutes ? `${fmtNumber(file.print_minutes)} min` : null,
    file.grams ? `${fmtNumber(file.grams, 1)} g` : null].filter(Boolean).join(' · ');
}

export async function render(root, { query, scope }) {
  const { api } = scope;
  let tab = TABS.find((t) => t[0] === query.get('tab')) || TABS[0];
  const orderId = query.get('order_id') || '';
  const orderFilter = h('input', { name: 'order_number', type: 'search', value: query.get('order') || '', autocomplete: 'off',
    placeholder: 'e.g. #1001' });
  let jobs = [];
  let nextCursor = null;
  let printers = new Map();

  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Job states' });
  const panel = h('div', { role: 'tabpanel', id: 'queue-panel' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => scope.run(load(true), showError) }, 'Load more');

  function drawTabs() {
    replace(tabs, TABS.map((t) => {
      const selected = t === tab;
      const button = h('button', { type: 'button', role: 'tab', id: `tab-${t[0]}`, 'aria-selected': String(selected),
        'aria-controls': 'queue-panel', tabindex: selected ? 0 : -1, onclick: () => scope.run(pick(t), showError) }, t[1]);
      button.addEventListener('keydown', (e) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
        if (!step) return;
        const next = TABS[(TABS.indexOf(tab) + step + TABS.length) % TABS.length];
        scope.run(pick(next), showError).then(() => document.getElementById(`tab-${next[0]}`)?.focus());
      });
      return button;
    }));
    panel.setAttribute('aria-labelledby', `tab-${tab[0]}`);
  }

  async function pick(t) {
    tab = t;
    drawTabs();
    remember();
    await load();
  }

  function remember() {
    setQuery({ tab: tab[0], order: orderFilter.value.trim(), order_id: orderId });
  }

  let generation = 0;
  async function load(append = false) {
    const mine = ++generation;
    const sort = tab[0] === 'queued' ? 'priority' : '-created_at';
    const page = await api.get('/jobs', { status: tab[2], order_number: orderFilter.value.trim(), order_id: orderId,
      sort, limit: 100, cursor: append ? nextCursor : null });
    if (mine !== generation || !scope.alive) return;
    jobs = append ? [...jobs, ...page.items] : page.items;
    nextCursor = page.next_cursor;
    draw();
  }

  function draw() {
    replace(panel, table(['Order', 'Part', 'Material', 'Printer', 'Priority', 'Progress', 'Status', ''], jobs.map(row),
      { caption: `${tab[1]} jobs`, empty: 'No jobs here.' }));
    more.hidden = !nextCursor;
  }

  function row(job) {
    const live = ['queued', 'slicing', 'assigned'].includes(job.status);
    const priority = h('select', { 'data-needs': 'operator', 'aria-label': `Priority of ${job.part_name} for ${job.order_number}`, disabled: !live },
      ['normal', 'low'].map((p) => h('option', { value: p, selected: job.priority === p }, p)));
    priority.addEventListener('change', () => act(job, () => api.patch(path`/jobs/${job.id}`, { priority: priority.value })));
    const printer = job.printer_id
      ? h('a', { href: `#${path`/printers/${job.printer_id}`}` }, printers.get(job.printer_id)?.name || job.printer_id.slice(0, 8)) : '—';
    const copy = job.copy ?? job.copy_number;
    return h('tr', { dataset: { id: job.id } },
      cell('Order', h('a', { href: `#${path`/orders/${job.order_id}`}` }, job.order_number)),
      cell('Part', job.part_name, copy ? h('span', { class: 'muted' }, ` #${copy}`) : null, job.sku ? h('div', { class: 'muted' }, job.sku) : null,
        job.file ? h('div', { class: 'muted' }, fileLabel(job.file)) : null),
      cell('Material', swatch(job.material?.color), ` ${job.material?.type || '—'}`),
      cell('Printer', printer),
      cell('Priority', priority),
      cell('Progress', ['printing', 'paused', 'completed'].includes(job.status)
        ? [progress(job.progress_percent || 0, 100, `progress of ${job.part_name}`), ` ${fmtNumber(job.progress_percent)}%`] : '—'),
      cell('Status', badge(job.status), job.error ? h('div', { class: 'error-text' }, job.error) : null),
      cell('', h('div', { class: 'row-actions' },
        live ? h('button', { type: 'button', class: 'link', onclick: () => why(job) }, 'Why waiting?') : null,
        ['queued', 'slicing', 'assigned', 'printing', 'paused'].includes(job.status)
          ? h('button', { type: 'button', class: 'link danger', 'data-needs': 'operator', onclick: () => act(job, () => api.post(path`/jobs/${job.id}/cancel`)) }, 'Cancel') : null,
        ['failed', 'cancelled'].includes(job.status)
          ? h('button', { type: 'button', class: 'link', 'data-needs': 'operator', onclick: () => act(job, () => api.post(path`/jobs/${job.id}/retry`)) }, 'Retry') : null,
        job.status === 'completed'
          ? h('button', { type: 'button', class: 'link danger', 'data-needs': 'operator', onclick: () => act(job, () => api.post(path`/jobs/${job.id}/fail`)) }, 'Reject print') : null)));
  }

  async function act(job, call) {
    try {
      apply(await call());
    } catch (error) {
      showError(error);
      await scope.run(load(), showError);
    }
  }

  async function why(job) {
    const body = h('div', {}, h('p', {}, 'Loading…'));
    openDialog(`Why is ${job.part_name} (${job.order_number}) waiting?`, body);
    try {
      const reply = await api.get(path`/jobs/${job.id}/matching`);
      const items = reply.items || [];
      const matched = items.filter((i) => i.result === 'matched');
      replace(body,
        h('p', {}, matched.length ? `${matched.length} printer${matched.length === 1 ? '' : 's'} could take it; it starts on the next matching pass.`
          : 'No printer can take this job right now:'),
        items.length ? h('ul', { class: 'why' }, items.map((i) => h('li', { class: `why-${i.result}` },
          h('strong', {}, i.printer_name), ` ${WHY[i.result] || i.result}`,
          i.detail ? h('div', { class: 'muted' }, i.detail)
            : i.color_distance != null ? h('div', { class: 'muted' }, `closest colour ΔE ${i.color_distance} (tolerance ${reply.color_tolerance})`) : null))) : h('p', {}, 'There are no printers.'),
        h('p', { class: 'muted' }, `Needs ${job.material?.type || 'any material'}${job.material?.color ? ` in ${job.material.color}` : ''}`,
          job.assignment?.mode === 'tags' ? `, tags: ${job.assignment.tags.join(', ')}` : '',
          job.assignment?.mode === 'printer' ? `, printer ${printers.get(job.assignment.printer_id)?.name || job.assignment.printer_id}` : '', '.'));
    } catch (error) {
      replace(body, h('p', { class: 'form-error', role: 'alert' }, error.message));
    }
  }

  /** A job's new state (from an action or the event stream): update, move out of this tab, or reload. */
  function apply(job) {
    const i = jobs.findIndex((j) => j.id === job.id);
    const fits = !tab[2].length || tab[2].includes(job.status);
    if (i >= 0) {
      if (fits) jobs[i] = { ...jobs[i], ...job };
      else jobs.splice(i, 1);
      draw();
      return;
    }
    const filter = orderFilter.value.trim();
    if (fits && (!filter || job.order_number === filter) && (!orderId || job.order_id === orderId)) reloadSoon();
  }

  const reloadSoon = scope.debounce(() => scope.run(load(), showError), 300);
  orderFilter.addEventListener('input', scope.debounce(() => { remember(); scope.run(load(), showError); }, 250));
  scope.on('job.updated', apply);
  scope.on('printer.updated', (p) => { printers.set(p.id, { ...(printers.get(p.id) || {}), ...p }); });
  scope.on('resync', reloadSoon);

  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs', onsubmit: (e) => e.preventDefault() },
    field('Order number', orderFilter));
  root.append(h('h1', {}, 'Print queue'), filters);
  if (orderId) root.append(h('p', { class: 'muted' }, 'Showing the jobs of one order. ', h('a', { href: '#/queue' }, 'Show all')));
  root.append(tabs, panel, more);
  drawTabs();
  const [list] = await Promise.all([api.get('/printers', { limit: 500 }), load()]);
  printers = new Map(list.items.map((p) => [p.id, p]));
  if (jobs.some((j) => j.printer_id)) draw();
}
