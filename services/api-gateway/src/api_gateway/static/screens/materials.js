// Material planning: what the queue needs against what is loaded, per printer, and what to load where.
import { path } from '../api.js';
import { badge, cell, field, fmtNumber, h, replace, showError, submitting, swatch, table, toast } from '../dom.js';
import { byPrinter, suggestLoads } from '../load_plan.js';
import { slotLabel } from '../printer_slots.js';

const material = (m) => [swatch(m.color), ` ${m.type || 'empty'}${m.color ? ` ${m.color}` : ''}`];
const printerLink = (p) => h('a', { href: `#${path`/printers/${p.id}`}` }, p.name);

export async function render(root, { scope }) {
  const { api } = scope;
  const plan = h('section', { 'aria-labelledby': 'plan-h' });
  const needed = h('section', { 'aria-labelledby': 'needs-h' });
  const perPrinter = h('section', { 'aria-labelledby': 'per-printer-h' });
  const tolerance = h('input', { type: 'number', name: 'color_tolerance', min: '0', max: '100', step: '0.5', required: true, inputmode: 'decimal' });
  const settings = h('form', { class: 'filters', 'aria-label': 'Colour matching', onsubmit: (e) => { e.preventDefault(); scope.run(saveTolerance(), showError); } },
    field('Colour tolerance (ΔE)', tolerance, { hint: '0 matches the exact colour only; 2–5 lets a close shade of the same colour match.' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-needs': 'operator' }, 'Save')));
  root.append(h('h1', {}, 'Material planning'),
    h('p', { class: 'muted' }, 'What the waiting jobs need against what the printers hold. Load what is suggested to unblock the most jobs.'),
    settings, plan, needed, perPrinter);

  async function saveTolerance() {
    const saved = await submitting(settings, () => api.put('/queue/settings', { color_tolerance: Number(tolerance.value) }));
    if (!saved || !scope.alive) return;
    tolerance.value = String(saved.color_tolerance);
    toast(`Colour tolerance set to ΔE ${saved.color_tolerance}`);
    await load();
  }

  let needs = [];
  let printers = [];

  async function load() {
    const [materials, fleet, farm] = await Promise.all([api.get('/queue/materials'), api.get('/printers', { limit: 500 }), api.get('/queue/settings')]);
    if (!scope.alive) return;
    if (document.activeElement !== tolerance) tolerance.value = String(farm.color_tolerance);
    needs = materials.items;
    printers = fleet.items.sort((a, b) => a.name.localeCompare(b.name));
    draw();
  }

  function draw() {
    const names = new Map(printers.map((p) => [p.id, p]));
    const suggestions = suggestLoads(needs, printers);
    replace(plan, h('h2', { id: 'plan-h' }, 'Suggested loads'),
      suggestions.length
        ? h('ol', { class: 'load-list' }, suggestions.map(({ need, printer, slot }) => h('li', {},
          h('strong', {}, 'Load '), material(need),
          printer ? [' on ', printerLink(printer), ` (${slotLabel(printer, slot)}${slot.type ? `, replacing ${slot.type}${slot.color ? ` ${slot.color}` : ''}` : ', empty'})`]
            : h('span', { class: 'warn-text' }, ' — no printer has a spare slot: unload a material no job is waiting for'),
          h('span', { class: 'muted' }, ` · unblocks ${need.jobs_waiting} job${need.jobs_waiting === 1 ? '' : 's'}, ${fmtNumber(need.grams_waiting)} g`))))
        : h('p', { class: 'ok' }, 'Every waiting job has a printer holding its material.'));

    replace(needed, h('h2', { id: 'needs-h' }, 'What the queue needs'),
      table(['Material', 'Jobs waiting', 'Grams', 'Loaded on'], needs.map((m) => h('tr', {},
        cell('Material', material(m)),
        cell('Jobs waiting', m.jobs_waiting),
        cell('Grams', fmtNumber(m.grams_waiting)),
        cell('Loaded on', (m.printers_loaded || []).length
          ? (m.printers_loaded || []).map((id, i) => [i ? ', ' : '', names.has(id) ? printerLink(names.get(id)) : id])
          : h('span', { class: 'due due-late' }, 'Not loaded')))),
      { caption: 'Materials the waiting jobs need', empty: 'No job is waiting.' }));

    replace(perPrinter, h('h2', { id: 'per-printer-h' }, 'By printer'),
      table(['Printer', 'State', 'Loaded', 'Waiting jobs it can take'], byPrinter(needs, printers).map(({ printer, serves }) => h('tr', {},
        cell('Printer', printerLink(printer)),
        cell('State', badge(printer.online ? printer.state : 'offline')),
        cell('Loaded', h('ul', { class: 'materials' }, (printer.materials || []).length
          ? printer.materials.map((m) => h('li', {}, material(m), h('span', { class: 'muted' }, ` ${slotLabel(printer, m)}`)))
          : h('li', { class: 'muted' }, 'No material reported'))),
        cell('Waiting jobs it can take', serves.length
          ? serves.map((n) => h('div', {}, material(n), ` · ${n.jobs_waiting} job${n.jobs_waiting === 1 ? '' : 's'}`))
          : h('span', { class: 'muted' }, 'none')))),
      { caption: 'Materials by printer', empty: 'No printers yet.' }));
  }

  const reload = scope.debounce(() => scope.run(load(), showError), 500);
  scope.on('printer.updated', reload);
  scope.on('job.updated', reload);
  scope.on('resync', reload);
  await load();
}
