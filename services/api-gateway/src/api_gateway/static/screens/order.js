// One order: header fields, line items with SKU PARAM forms and what their jobs print (the sliced estimate), live job counts, Print Jobs, cancel, close.
import { ApiError, path } from '../api.js';
import {
  badge, cell, checkbox, completeMark, confirmDialog, field, fmtNumber, h, openDialog, progress, replace,
  showError, submitting, swatch, table, toast,
} from '../dom.js';
import { forecastLate, forecastText } from '../fulfilment.js';
import { openSkuDialog } from '../sku_dialog.js';

const HEADER_FIELDS = ['order_number', 'customer_name', 'customer_email', 'fulfillment_date', 'notes'];

/** Inputs for a SKU's parameters; `read()` gives {name: typed value} for the ones that have a value. */
export function parameterInputs(parameters, values = {}) {
  const readers = [];
  const nodes = parameters.map((p) => {
    const current = values[p.name] ?? p.default;
    const label = p.description ? `${p.name} — ${p.description}` : p.name;
    if (p.options && p.options.length) {
      const options = p.options.map((o) => (o !== null && typeof o === 'object' ? o : { value: o }));
      const input = h('select', { name: p.name },
        options.map((o) => h('option', { value: JSON.stringify(o.value), selected: o.value === current },
          o.label ? `${o.label} (${o.value})` : String(o.value))));
      readers.push(() => [p.name, JSON.parse(input.value)]);
      return field(label, input);
    }
    if (p.type === 'boolean') {
      const input = h('input', { name: p.name, type: 'checkbox', checked: Boolean(current) });
      readers.push(() => [p.name, input.checked]);
      return checkbox(label, input);
    }
    if (p.type === 'number') {
      const input = h('input', { name: p.name, type: 'number', value: current ?? '', min: p.min, max: p.max,
        step: p.step ?? 'any' });
      const range = [p.min !== undefined && p.min !== null ? `min ${p.min}` : '', p.max !== undefined && p.max !== null ? `max ${p.max}` : '',
        p.step ? `step ${p.step}` : ''].filter(Boolean).join(', ');
      readers.push(() => [p.name, input.value === '' ? undefined : Number(input.value)]);
      return field(label, input, { hint: range || null });
    }
    const input = h('input', { name: p.name, value: current ?? '', autocomplete: 'off' });
    readers.push(() => [p.name, input.value]);
    return field(label, input);
  });
  const read = () => Object.fromEntries(readers.map((r) => r()).filter(([, v]) => v !== undefined));
  return { nodes, read };
}

function describeParameters(parameters) {
  const entries = Object.entries(parameters || {});
  if (!entries.length) return '—';
  return h('ul', { class: 'params' }, entries.map(([k, v]) => h('li', {}, h('span', { class: 'muted' }, `${k}: `), String(v))));
}

const NOT_STARTED = new Set(['queued', 'slicing', 'assigned']);
/** At most 2,000 jobs are read on each refresh: a larger order shows the estimates of the lines read. */
const JOB_PAGES = 4;

/** "42 min", "2 h 05 min". */
function fmtMinutes(minutes) {
  const total = Math.round(Number(minutes));
  if (total < 60) return `${total} min`;
  return `${Math.floor(total / 60)} h ${String(total % 60).padStart(2, '0')} min`;
}

/** True when a job not started yet still carries other values than its line: it is re-sliced once the order is sent again. */
function staleValues(li, job) {
  if (!NOT_STARTED.has(job.status)) return false;
  return Object.entries(li.parameters || {}).some(([k, v]) => JSON.stringify((job.parameters || {})[k]) !== JSON.stringify(v));
}

/**
 * The line's estimate from what its jobs print (`file`: the slicer's estimate for an OpenSCAD or mesh part, the
 * file's own for a pre-sliced one): "slicing…" while a job waits for its file, the slicer's message when a slice failed.
 */
function describeEstimate(li, jobs) {
  const live = (jobs || []).filter((j) => j.status !== 'cancelled');
  if (!live.length) {
    return Object.keys(li.parameters || {}).length ? h('span', { class: 'muted' }, 'sliced when sent to the queue') : '—';
  }
  if (live.some((j) => staleValues(li, j))) {
    return h('span', { class: 'muted', dataset: { estimate: 'stale' } }, 'values changed: sliced again when sent to the queue');
  }
  const refused = live.filter((j) => j.status === 'failed' && !j.file && j.error);
  const waiting = live.filter((j) => !j.file && !refused.includes(j));
  const known = live.filter((j) => j.file);
  const minutes = known.reduce((sum, j) => sum + (Number(j.file.print_minutes) || 0), 0);
  const grams = known.reduce((sum, j) => sum + (Number(j.file.grams) || 0), 0);
  const parts = [];
  if (known.length) {
    const each = known.length > 1 ? ` (${known.length} jobs)` : '';
    const profiles = [...new Set(known.map((j) => j.file.profile).filter(Boolean))];
    parts.push(h('div', { dataset: { estimate: 'known' }, title: profiles.length ? `sliced with ${profiles.join(', ')}` : null },
      `${known.some((j) => j.file.print_minutes) ? fmtMinutes(minutes) : '— min'} · ${fmtNumber(grams, 1)} g${each}`));
  }
  if (waiting.length) parts.push(h('div', { class: 'muted', dataset: { estimate: 'slicing' } }, 'slicing…'));
  if (refused.length) parts.push(h('div', { class: 'error-text', dataset: { estimate: 'failed' } }, `slicing failed: ${refused[0].error}`));
  return parts;
}

export async function render(root, { params: [orderId], scope }) {
  const { api } = scope;
  const { request } = api;
  const here = path`/orders/${orderId}`;
  let order = null;
  let etag = null;
  let headerDirty = false;
  let linesStale = false;
  const skus = new Map();
  let jobsByLine = new Map();

  const title = h('h1', {});
  const statusSlot = h('span', {});
  const summary = h('section', { class: 'panel summary', 'aria-label': 'Jobs' });
  const breakdown = h('section', { class: 'panel', 'aria-labelledby': 'breakdown-h' });
  const lineItems = h('section', { 'aria-labelledby': 'lines-h' });
  const adder = h('section', { class: 'panel', 'aria-labelledby': 'add-h' });
  const header = h('form', { class: 'panel grid', novalidate: true, 'aria-labelledby': 'details-h' });

  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/orders' }, '← Orders')),
    h('div', { class: 'title-row' }, title, statusSlot),
    summary,
    h('div', { class: 'columns' }, header, breakdown),
    lineItems, adder);

  // ------------------------------------------------------------ loading and drawing

  async function load() {
    const [reply, jobs] = await Promise.all([request('GET', here), loadJobs()]);
    if (!scope.alive) return;
    jobsByLine = jobs;
    accept(reply);
  }

  /** The order's jobs by line item: what each line prints and its estimate. */
  async function loadJobs() {
    const byLine = new Map();
    let cursor = null;
    for (let page = 0; page < JOB_PAGES; page += 1) {
      const found = await api.get('/jobs', { order_id: orderId, limit: 500, cursor });
      for (const job of found.items) {
        if (!byLine.has(job.line_item_id)) byLine.set(job.line_item_id, []);
        byLine.get(job.line_item_id).push(job);
      }
      cursor = found.next_cursor;
      if (!cursor) break;
    }
    return byLine;
  }

  function accept({ data, etag: tag }) {
    order = data;
    etag = tag || (data.revision !== undefined ? `"${data.revision}"` : null);
    for (const b of order.sku_breakdown || []) skus.set(b.sku_id, { ...(skus.get(b.sku_id) || {}), jobs_per_unit: b.jobs_per_unit });
    draw();
  }

  const readOnly = () => order.status === 'closed' || order.status === 'cancelled';
  const ifMatch = () => (etag ? { 'If-Match': etag } : {});

  /** What the operator edits: the queue's progress (job counts, status, estimates) changes the order's
   * revision too, but a change made meanwhile to none of these is not a conflict for the operator. */
  const edited = (o) => JSON.stringify([o.order_number, o.customer_name, o.customer_email, o.fulfillment_date, o.notes,
    o.line_items.map((li) => [li.id, li.sku_id, li.quantity, li.parameters])]);

  /** Sends a change of the order. A stale ETag (412) reloads it: when only the queue's progress changed it
   * meanwhile, the change is sent once more on the new revision; otherwise the operator sees what changed. */
  async function change(method, path, json, again = true) {
    try {
      accept(await request(method, path, { json, headers: ifMatch() }));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const before = order && edited(order);
        await load();
        if (again && order && before === edited(order)) return change(method, path, json, false);
        toast('Someone changed this order meanwhile; it has been reloaded. Check it and try again.', 'error');
        return false;
      }
      throw error;
    }
  }

  function draw() {
    replace(title, `Order ${order.order_number} `, completeMark(order.is_complete));
    replace(statusSlot, badge(order.status), order.is_complete ? h('span', { class: 'ok' }, ' all jobs complete') : null);
    drawSummary();
    if (!headerDirty) drawHeader();
    drawBreakdown();
    linesStale = lineItems.contains(document.activeElement) && document.activeElement.matches('input');
    if (!linesStale) drawLineItems();
    drawAdder();
  }

  function plannedJobs() {
    let total = 0;
    for (const li of order.line_items) {
      const input = lineItems.querySelector(`input[data-line="${li.id}"]`);
      const quantity = input && input.value !== '' ? Number(input.value) : li.quantity;
      const perUnit = skus.get(li.sku_id)?.jobs_per_unit ?? (li.quantity ? li.job_count / li.quantity : 0);
      total += quantity * perUnit;
    }
    return total;
  }

  const counter = h('strong', { class: 'counter', 'aria-live': 'polite' });
  const pending = h('span', { class: 'muted' });
  function drawCounter(extra = 0) {
    counter.textContent = String(plannedJobs());
    pending.textContent = extra ? ` (+${extra} with the line item being added)` : '';
  }

  function drawSummary() {
    const jobs = order.jobs || { total: 0, queued: 0, printing: 0, completed: 0, failed: 0, cancelled: 0 };
    drawCounter();
    replace(summary,
      h('div', { class: 'stat' }, h('span', { class: 'muted' }, 'Jobs for this order'), h('div', {}, counter, pending)),
      h('div', { class: 'stat wide' }, h('span', { class: 'muted' }, 'Progress'),
        progress(jobs.completed, jobs.total, 'jobs completed'),
        h('div', { class: 'counts' }, `${jobs.completed} of ${jobs.total} sent jobs completed · ${jobs.queued} queued · `
          + `${jobs.printing} printing · ${jobs.failed} failed · ${jobs.cancelled} cancelled`)),
      order.forecast ? h('div', { class: 'stat wide' }, h('span', { class: 'muted' }, 'Forecast'),
        h('div', {}, forecastText(order) || '—', forecastLate(order) ? [' ', h('span', { class: 'due due-forecast' }, 'Forecast late')] : null))
        : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-needs': 'operator', disabled: readOnly() || !order.line_items.length, onclick: () => scope.run(printJobs(), showError) }, 'Print Jobs'),
        h('a', { class: 'button', href: `#/queue?order_id=${encodeURIComponent(order.id)}&tab=all` }, 'See jobs'),
        h('button', { type: 'button', 'data-needs': 'operator', disabled: readOnly(), onclick: cancelOrder }, 'Cancel order'),
        h('button', { type: 'button', 'data-needs': 'operator', disabled: !(order.is_complete || order.status === 'cancelled' || order.status === 'completed') || order.status === 'closed', onclick: closeOrder }, 'Close order')));
  }

  function drawHeader() {
    // Only what the operator changed since this form was drawn is sent, never a stale copy of the rest.
    const shown = { ...order };
    const inputs = {
      order_number: h('input', { name: 'order_number', required: true, value: order.order_number, autocomplete: 'off' }),
      customer_name: h('input', { name: 'customer_name', value: order.customer_name || '', autocomplete: 'off' }),
      customer_email: h('input', { name: 'customer_email', type: 'email', value: order.customer_email || '', autocomplete: 'off' }),
      fulfillment_date: h('input', { name: 'fulfillment_date', type: 'date', value: order.fulfillment_date || '' }),
      notes: h('textarea', { name: 'notes', rows: 3 }, order.notes || ''),
    };
    const box = h('fieldset', { disabled: order.status === 'closed' },
      h('legend', { id: 'details-h' }, 'Details'),
      h('div', { class: 'grid' },
        field('Order number', inputs.order_number), field('Customer name', inputs.customer_name),
        field('Customer email', inputs.customer_email), field('Fulfilment date', inputs.fulfillment_date),
        field('Notes', inputs.notes, { wide: true })));
    replace(header, box, h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', 'data-needs': 'operator', disabled: order.status === 'closed' }, 'Save details')));
    header.oninput = () => { headerDirty = true; };
    header.onsubmit = (e) => {
      e.preventDefault();
      submitting(header, async () => {
        const body = {};
        for (const name of HEADER_FIELDS) {
          const raw = inputs[name].value;
          const value = name === 'order_number' ? raw : raw.trim();
          const before = shown[name] ?? '';
          if (value !== before) body[name] = value === '' && name !== 'order_number' ? null : value;
        }
        if (!Object.keys(body).length) {
          headerDirty = false;
          return;
        }
        if (await change('PATCH', here, body)) {
          headerDirty = false;
          drawHeader();
          toast('Order details saved.');
        }
      });
    };
  }

  function drawBreakdown() {
    replace(breakdown, h('h2', { id: 'breakdown-h' }, 'SKU breakdown'),
      table(['SKU', 'Quantity', 'Jobs / unit', 'Jobs'], (order.sku_breakdown || []).map((b) => h('tr', {},
        cell('SKU', b.sku), cell('Quantity', b.quantity), cell('Jobs / unit', b.jobs_per_unit), cell('Jobs', b.job_count))),
      { caption: 'SKU breakdown', empty: 'No line items yet.' }),
      h('h2', {}, 'Material totals'),
      table(['Material', 'Grams'], (order.materials || []).map((m) => h('tr', {},
        cell('Material', swatch(m.color), ` ${m.type}${m.color ? ` ${m.color}` : ''}`), cell('Grams', fmtNumber(m.grams, 1)))),
      { caption: 'Material totals', empty: 'No materials yet.' }));
  }

  function drawLineItems() {
    const rows = order.line_items.map((li) => {
      const quantity = h('input', { type: 'number', min: 1, step: 1, value: li.quantity, name: 'quantity',
        'aria-label': `Quantity of ${li.sku || li.sku_id}`, disabled: readOnly(), dataset: { line: li.id } });
      quantity.addEventListener('input', () => drawCounter());
      const form = h('form', { class: 'inline-form', novalidate: true }, quantity);
      const saveQuantity = () => {
        if (Number(quantity.value) === li.quantity) return;
        submitting(form, async () => {
          await change('PATCH', `${here}${path`/line-items/${li.id}`}`, { quantity: Number(quantity.value) });
        });
      };
      quantity.addEventListener('change', saveQuantity);
      form.addEventListener('submit', (e) => { e.preventDefault(); saveQuantity(); });
      const jobs = li.jobs || {};
      const done = jobs.completed || 0;
      return h('tr', { class: 'line', dataset: { id: li.id } },
        cell('SKU', h('strong', {}, li.sku || '(deleted SKU)'), h('div', { class: 'muted' }, li.sku_name || '')),
        cell('Parameters', describeParameters(li.parameters)),
        cell('Estimate', describeEstimate(li, jobsByLine.get(li.id))),
        cell('Quantity', form),
        cell('Progress', progress(done, li.job_count, `jobs of ${li.sku}`),
          h('div', { class: 'counts' }, `${done}/${li.job_count} done`,
            jobs.printing ? ` · ${jobs.printing} printing` : '', jobs.queued ? ` · ${jobs.queued} queued` : '',
            jobs.failed ? ` · ${jobs.failed} failed` : '', jobs.cancelled ? ` · ${jobs.cancelled} cancelled` : '')),
        cell('', h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'link', 'data-needs': 'operator', disabled: readOnly(), onclick: () => scope.run(editParameters(li), showError) }, 'Parameters'),
          h('button', { type: 'button', class: 'link danger', 'data-needs': 'operator', disabled: readOnly(), onclick: () => scope.run(removeLine(li), showError) }, 'Remove'))));
    });
    replace(lineItems, h('h2', { id: 'lines-h' }, 'Line items'),
      table(['SKU', 'Parameters', 'Estimate', 'Quantity', 'Progress', ''], rows, { caption: 'Line items', empty: 'No line items yet: add one below.' }));
  }

  // ------------------------------------------------------------ adding line items

  let chosen = null;
  let adderDrawn = false;
  const search = h('input', { name: 'sku_search', type: 'search', autocomplete: 'off', placeholder: 'SKU code or name' });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const chosenSlot = h('div', {});

  function drawAdder() {
    adder.hidden = readOnly();
    if (adderDrawn) return;
    adderDrawn = true;
    replace(adder, h('h2', { id: 'add-h' }, 'Add a line item'),
      h('div', { class: 'filters' }, field('Find a SKU', search)), results, chosenSlot);
  }

  const findSkus = scope.debounce(() => scope.run(findSkusNow(), showError), 250);
  async function findSkusNow() {
    const text = search.value.trim();
    if (!text) {
      replace(results);
      return;
    }
    const found = (await api.get('/skus', { q: text, limit: 10 })).items;
    if (!scope.alive || text !== search.value.trim()) return;
    const exact = found.some((s) => s.sku.toLowerCase() === text.toLowerCase());
    replace(results, h('ul', { class: 'choices' },
      found.map((s) => h('li', {}, h('button', { type: 'button', onclick: () => scope.run(choose(s), showError) },
        h('strong', {}, s.sku), ` ${s.name} · ${s.jobs_per_unit} job${s.jobs_per_unit === 1 ? '' : 's'} per unit`))),
      exact ? null : h('li', {}, h('button', { type: 'button', class: 'create', onclick: () => scope.run(createSku(text), showError) },
        `Create SKU “${text}”`))),
    found.length ? null : h('p', { class: 'muted' }, 'No SKU matches.'));
  }
  search.addEventListener('input', findSkus);

  async function createSku(text) {
    const sku = await openSkuDialog({ code: text });
    if (sku) await choose(sku);
  }

  async function choose(sku) {
    chosen = sku.parameters ? sku : await api.get(path`/skus/${sku.id}`);
    skus.set(chosen.id, chosen);
    replace(results);
    search.value = '';
    const quantity = h('input', { name: 'quantity', type: 'number', min: 1, step: 1, value: 1 });
    const inputs = parameterInputs(chosen.parameters || []);
    const form = h('form', { class: 'grid', novalidate: true },
      h('p', { class: 'wide' }, 'SKU ', h('strong', {}, chosen.sku), ` — ${chosen.name} (${chosen.jobs_per_unit} job${chosen.jobs_per_unit === 1 ? '' : 's'} per unit)`),
      field('Quantity', quantity),
      inputs.nodes.length ? h('fieldset', { class: 'wide grid' }, h('legend', {}, 'Parameters'), inputs.nodes) : null,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add to order'),
        h('button', { type: 'button', onclick: () => { chosen = null; replace(chosenSlot); drawCounter(); } }, 'Cancel')));
    const update = () => drawCounter(Number(quantity.value || 0) * chosen.jobs_per_unit);
    quantity.addEventListener('input', update);
    update();
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const body = { sku_id: chosen.id, quantity: Number(quantity.value), parameters: inputs.read() };
        if (await change('POST', `${here}/line-items`, body)) {
          chosen = null;
          replace(chosenSlot);
          drawCounter();
          search.focus();
        }
      });
    });
    replace(chosenSlot, form);
    quantity.focus();
  }

  async function editParameters(li) {
    const sku = skus.get(li.sku_id)?.parameters ? skus.get(li.sku_id) : await api.get(path`/skus/${li.sku_id}`);
    skus.set(sku.id, sku);
    const inputs = parameterInputs(sku.parameters || [], li.parameters);
    const form = h('form', { class: 'grid', novalidate: true },
      inputs.nodes.length ? inputs.nodes : h('p', {}, `SKU ${sku.sku} has no SKU PARAMs.`),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', disabled: !inputs.nodes.length }, 'Save parameters')));
    const { close } = openDialog(`Parameters of ${li.sku}`, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        if (await change('PATCH', `${here}${path`/line-items/${li.id}`}`, { parameters: inputs.read() })) close();
      });
    });
  }

  async function removeLine(li) {
    if (!(await confirmDialog('Remove line item', `Remove ${li.quantity}× ${li.sku} from this order?`, 'Remove'))) return;
    try {
      await change('DELETE', `${here}${path`/line-items/${li.id}`}`);
    } catch (error) {
      showError(error);
    }
  }

  // ------------------------------------------------------------ order actions

  async function printJobs() {
    const printers = (await api.get('/printers', { limit: 500 })).items;
    const tags = [...new Set(printers.flatMap((p) => p.tags || []))].sort();
    const mode = (value, label, checked) => {
      const input = h('input', { type: 'radio', name: 'mode', value, checked });
      return checkbox(label, input);
    };
    const printer = h('select', { name: 'printer_id' }, h('option', { value: '' }, '— choose a printer —'),
      printers.map((p) => h('option', { value: p.id }, `${p.name} (${p.state})`)));
    const tagBoxes = tags.map((t) => checkbox(t, h('input', { type: 'checkbox', name: 'tag', value: t })));
    const form = h('form', { class: 'grid', novalidate: true },
      h('fieldset', { class: 'wide' }, h('legend', {}, 'Which printers may take these jobs?'),
        mode('next_available', 'Next available', true),
        mode('printer', 'Specific printer'),
        mode('tags', 'Tagged printers (carrying all the chosen tags)')),
      h('div', { class: 'wide', dataset: { when: 'printer' }, hidden: true }, field('Printer', printer)),
      h('fieldset', { class: 'wide', dataset: { when: 'tags', field: 'tags' }, hidden: true }, h('legend', {}, 'Tags'),
        tagBoxes.length ? tagBoxes : h('p', { class: 'muted' }, 'No printer has tags yet.')),
      h('p', { class: 'wide muted' }, 'Sending again only adds jobs for what is new and cancels queued jobs of removed line items.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Send to the queue')));
    const current = order.assignment || {};
    if (current.mode) form.querySelector(`input[value="${current.mode}"]`).checked = true;
    if (current.printer_id) printer.value = current.printer_id;
    for (const t of current.tags || []) {
      const box = form.querySelector(`input[name=tag][value="${CSS.escape(t)}"]`);
      if (box) box.checked = true;
    }
    const sync = () => {
      const chosenMode = form.querySelector('input[name=mode]:checked').value;
      form.querySelectorAll('[data-when]').forEach((n) => { n.hidden = n.dataset.when !== chosenMode; });
    };
    form.addEventListener('change', sync);
    sync();
    const { close } = openDialog(`Print Jobs for ${order.order_number}`, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const chosenMode = form.querySelector('input[name=mode]:checked').value;
        const assignment = { mode: chosenMode };
        if (chosenMode === 'printer') assignment.printer_id = printer.value;
        if (chosenMode === 'tags') assignment.tags = [...form.querySelectorAll('input[name=tag]:checked')].map((c) => c.value);
        const reply = await api.post(`${here}/print-jobs`, { assignment }, ifMatch());
        close();
        toast(`Sent to the queue (print revision ${reply.print_revision}).`);
        await load();
      });
    });
  }

  async function cancelOrder() {
    if (!(await confirmDialog('Cancel order', 'Queued jobs are cancelled; jobs already printing finish.', 'Cancel order'))) return;
    try {
      await change('POST', `${here}/cancel`);
    } catch (error) {
      showError(error);
    }
  }

  async function closeOrder() {
    try {
      await change('POST', `${here}/close`);
      toast(`Order ${order.order_number} closed.`);
    } catch (error) {
      showError(error);
    }
  }

  const refresh = scope.debounce(() => scope.run(load(), showError), 200);
  scope.on('order.updated', (e) => { if (e.id === orderId) refresh(); });
  scope.on('order.completed', (e) => { if (e.id === orderId) refresh(); });
  scope.on('job.updated', (j) => { if (j.order_id === orderId) refresh(); });
  scope.on('resync', refresh);
  lineItems.addEventListener('focusout', () => setTimeout(() => {
    if (scope.alive && linesStale && !lineItems.contains(document.activeElement)) {
      linesStale = false;
      drawLineItems();
    }
  }, 0));

  await load();
}
