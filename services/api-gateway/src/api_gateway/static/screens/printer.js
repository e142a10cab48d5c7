// One printer: its state, the job on it now, what it holds, and the jobs it printed (newest first).
import { path } from '../api.js';
import { badge, cell, fmtNumber, fmtTime, h, progress, replace, showError, swatch, table } from '../dom.js';
import { slotLabel } from '../printer_slots.js';

export async function render(root, { params: [printerId], scope }) {
  const { api } = scope;
  let printer = null;
  let jobs = [];
  let nextCursor = null;
  const title = h('h1', {});
  const stateBadge = h('span', {});
  const state = h('section', { class: 'panel', 'aria-labelledby': 'state-h' });
  const now = h('section', { class: 'panel', 'aria-labelledby': 'now-h' });
  const history = h('section', { 'aria-labelledby': 'history-h' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => scope.run(loadJobs(true), showError) }, 'Load more');
  root.append(h('p', { class: 'crumbs' }, h('a', { href: '#/printers' }, '← Printers')),
    h('div', { class: 'title-row' }, title, stateBadge),
    h('div', { class: 'columns' }, state, now), history, more);

  async function loadPrinter() {
    printer = await api.get(path`/printers/${printerId}`);
    if (scope.alive) draw();
  }

  async function loadJobs(append = false) {
    const page = await api.get('/jobs', { printer_id: printerId, sort: '-created_at', limit: 50, cursor: append ? nextCursor : null });
    if (!scope.alive) return;
    jobs = append ? [...jobs, ...page.items] : page.items;
    nextCursor = page.next_cursor;
    draw();
  }

  function draw() {
    if (!printer) return;
    const shown = printer.online ? printer.state : 'offline';
    replace(title, `Printer ${printer.name}`);
    replace(stateBadge, badge(shown));
    replace(state, h('h2', { id: 'state-h' }, 'State'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Model'), h('dd', {}, printer.model),
        h('dt', {}, 'Host'), h('dd', {}, printer.host || '—'),
        h('dt', {}, 'Online'), h('dd', {}, printer.online ? 'yes' : 'no'),
        h('dt', {}, 'Bed'), h('dd', {}, printer.bed_clear ? 'clear' : 'part on the bed'),
        h('dt', {}, 'Tags'), h('dd', {}, (printer.tags || []).join(', ') || '—', printer.fabmatic ? ' · FabMatic' : ''),
        printer.error ? [h('dt', {}, 'Error'), h('dd', { class: 'error-text' }, printer.error)] : null),
      h('h3', {}, 'Loaded materials'),
      h('ul', { class: 'materials' }, (printer.materials || []).length
        ? printer.materials.map((m) => h('li', {}, swatch(m.color), ` ${slotLabel(printer, m)}: ${m.type || 'empty'}${m.color ? ` ${m.color}` : ''}`,
          m.remain_percent !== null && m.remain_percent !== undefined && m.remain_percent >= 0 ? h('span', { class: 'muted' }, ` ${m.remain_percent}%`) : null))
        : h('li', { class: 'muted' }, 'No material reported')));
    const current = jobs.find((j) => j.id === printer.current_job_id) || jobs.find((j) => ['printing', 'paused', 'assigned'].includes(j.status));
    replace(now, h('h2', { id: 'now-h' }, 'Current job'), current
      ? h('div', {},
        h('p', {}, h('a', { href: `#${path`/orders/${current.order_id}`}` }, current.order_number), ` · ${current.part_name}`,
          current.copy ? ` #${current.copy}` : '', ' ', badge(current.status)),
        progress(current.progress_percent || 0, 100, `progress of ${current.part_name}`), ` ${fmtNumber(current.progress_percent)}%`,
        h('p', { class: 'muted' }, `Started ${fmtTime(current.started_at)}`))
      : h('p', { class: 'muted' }, 'Nothing printing.'));
    replace(history, h('h2', { id: 'history-h' }, 'Job history'),
      table(['Order', 'Part', 'Material', 'Status', 'Started', 'Finished'], jobs.map((j) => h('tr', { dataset: { id: j.id } },
        cell('Order', h('a', { href: `#${path`/orders/${j.order_id}`}` }, j.order_number)),
        cell('Part', j.part_name, j.copy ? h('span', { class: 'muted' }, ` #${j.copy}`) : null),
        cell('Material', swatch(j.material?.color), ` ${j.material?.type || '—'}`),
        cell('Status', badge(j.status), j.error ? h('div', { class: 'error-text' }, j.error) : null),
        cell('Started', fmtTime(j.started_at)),
        cell('Finished', fmtTime(j.finished_at)))),
      { caption: `Jobs printed on ${printer.name}`, empty: 'No jobs on this printer yet.' }));
    more.hidden = !nextCursor;
  }

  const reloadJobs = scope.debounce(() => scope.run(loadJobs(), showError), 300);
  scope.on('printer.updated', (p) => {
    if (p.id !== printerId) return;
    printer = { ...printer, ...p };
    draw();
    if (p.current_job_id !== undefined) reloadJobs();
  });
  scope.on('job.updated', (j) => {
    const i = jobs.findIndex((x) => x.id === j.id);
    if (i >= 0) {
      jobs[i] = { ...jobs[i], ...j };
      draw();
    } else if (j.printer_id === printerId) {
      reloadJobs();
    }
  });
  scope.on('resync', () => scope.run(Promise.all([loadPrinter(), loadJobs()]), showError));
  await loadPrinter();
  await loadJobs();
}
