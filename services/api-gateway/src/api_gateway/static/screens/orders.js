// Orders list: search and filters (kept in the address), the green check, bulk close, new order.
import { path } from '../api.js';
import {
  badge, cell, checkbox, completeMark, field, fmtDate, h, openDialog, progress, replace, select, showError,
  submitting, table,
} from '../dom.js';
import { DUE_LABELS, DUE_SOON_DAYS, atRisk, dueState, forecastLate, forecastText, localToday } from '../fulfilment.js';
import { go, setQuery } from '../router.js';

const STATUSES = [['', 'Any status'], ['open', 'Open'], ['queued', 'Queued'], ['printing', 'Printing'],
  ['completed', 'Completed'], ['cancelled', 'Cancelled'], ['closed', 'Closed']];

const SORTS = [['-created_at', 'Newest first'], ['created_at', 'Oldest first'], ['fulfillment_date', 'Fulfilment date, soonest first'],
  ['-fulfillment_date', 'Fulfilment date, latest first'], ['order_number', 'Order number']];

/** Orders still to make: the statuses an at-risk order can have. */
const UNFINISHED = ['open', 'queued', 'printing'];

export async function render(root, { query, scope }) {
  const { api } = scope;
  const filters = {
    q: query.get('q') || '',
    customer: query.get('customer') || '',
    fulfillment_from: query.get('from') || '',
    fulfillment_to: query.get('to') || '',
    status: query.get('status') || '',
    include_closed: query.get('closed') === '1',
    sort: SORTS.some(([v]) => v === query.get('sort')) ? query.get('sort') : '-created_at',
    at_risk: query.get('risk') === '1',
  };
  let orders = [];
  let nextCursor = null;
  const selected = new Set();

  const q = h('input', { name: 'q', type: 'search', value: filters.q, placeholder: 'e.g. #1001', autocomplete: 'off' });
  const customer = h('input', { name: 'customer', type: 'search', value: filters.customer, placeholder: 'name or email' });
  const from = h('input', { name: 'fulfillment_from', type: 'date', value: filters.fulfillment_from });
  const to = h('input', { name: 'fulfillment_to', type: 'date', value: filters.fulfillment_to });
  const status = select('status', STATUSES, filters.status);
  const closed = h('input', { name: 'include_closed', type: 'checkbox', checked: filters.include_closed });
  const sort = select('sort', SORTS, filters.sort);
  const risk = h('input', { name: 'at_risk', type: 'checkbox', checked: filters.at_risk });
  const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter orders' },
    field('Order number', q), field('Customer', customer), field('Fulfilment from', from), field('Fulfilment to', to),
    field('Status', status), field('Sort by', sort), checkbox('Show closed orders', closed),
    checkbox(`At risk only (late, due within ${DUE_SOON_DAYS} days or forecast late, not complete)`, risk));
  filterForm.addEventListener('submit', (e) => e.preventDefault());

  const menuButton = h('button', { type: 'button', 'data-needs': 'operator', 'aria-haspopup': 'true', 'aria-expanded': 'false',
    'aria-controls': 'orders-actions' }, 'Actions ▾');
  const closeSelected = h('button', { type: 'button', role: 'menuitem', onclick: () => closeOrders() }, 'Close selected orders');
  const menu = h('div', { id: 'orders-actions', class: 'menu', role: 'menu', hidden: true }, closeSelected);
  const toggleMenu = (open) => {
    menu.hidden = !open;
    menuButton.setAttribute('aria-expanded', String(open));
    if (open) closeSelected.focus();
  };
  menuButton.addEventListener('click', () => toggleMenu(menu.hidden));
  menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') { toggleMenu(false); menuButton.focus(); } });
  const outside = (e) => { if (!menu.hidden && !menu.contains(e.target) && e.target !== menuButton) toggleMenu(false); };
  document.addEventListener('click', outside);
  scope.onLeave(() => document.removeEventListener('click', outside));

  const selection = h('span', { class: 'muted', 'aria-live': 'polite' });
  const result = h('div', { 'aria-live': 'polite' });
  const list = h('div', {});
  const more = h('button', { type: 'button', hidden: true, onclick: () => scope.run(load(true), showError) }, 'Load more');

  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Orders'),
      h('button', { type: 'button', class: 'primary', 'data-needs': 'operator', onclick: newOrder }, 'New order')),
    filterForm,
    h('div', { class: 'toolbar' }, h('div', { class: 'menu-wrap' }, menuButton, menu), selection),
    result, list, more);

  function readFilters() {
    filters.q = q.value;
    filters.customer = customer.value.trim();
    filters.fulfillment_from = from.value;
    filters.fulfillment_to = to.value;
    filters.status = status.value;
    filters.include_closed = closed.checked || status.value === 'closed';
    filters.sort = sort.value;
    filters.at_risk = risk.checked;
    setQuery({ q: filters.q, customer: filters.customer, from: filters.fulfillment_from, to: filters.fulfillment_to,
      status: filters.status, closed: closed.checked ? '1' : '', sort: filters.sort === '-created_at' ? '' : filters.sort,
      risk: filters.at_risk ? '1' : '' });
  }

  let generation = 0;
  async function load(append = false) {
    const mine = ++generation;
    const asked = query_();
    const page = asked ? await api.get('/orders', { ...asked, cursor: append ? nextCursor : null }) : { items: [], next_cursor: null };
    if (mine !== generation || !scope.alive) return;
    const items = filters.at_risk ? page.items.filter((o) => atRisk(o, localToday())) : page.items;
    orders = append ? [...orders, ...items] : items;
    nextCursor = page.next_cursor;
    for (const id of [...selected]) if (!orders.some((o) => o.id === id)) selected.delete(id);
    draw();
  }

  /** The list's query (null: nothing can match); at risk narrows it on the server (unfinished) and here (due
   * soon or forecast late: an order due next month can be forecast late, so no date bound on the server). */
  function query_() {
    const { at_risk: onlyAtRisk, ...rest } = filters;
    const asked = { ...rest, include_closed: filters.include_closed ? 'true' : '' };
    if (!onlyAtRisk) return asked;
    const statuses = asked.status ? UNFINISHED.filter((s) => s === asked.status) : UNFINISHED;
    return statuses.length ? { ...asked, status: statuses.join(',') } : null;
  }

  const reload = scope.debounce(() => scope.run(load(), showError), 250);
  for (const input of [q, customer]) input.addEventListener('input', () => { readFilters(); reload(); });
  for (const input of [from, to, status, closed, sort, risk]) input.addEventListener('change', () => { readFilters(); reload(); });

  function draw() {
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all orders shown',
      checked: orders.length > 0 && orders.every((o) => selected.has(o.id)) });
    all.addEventListener('change', () => {
      orders.forEach((o) => (all.checked ? selected.add(o.id) : selected.delete(o.id)));
      draw();
    });
    const rows = orders.map((order) => row(order));
    replace(list, table([{ label: all, class: 'select' }, 'Order', 'Customer', 'Fulfilment', 'Status', 'Jobs', 'Updated'],
      rows, { caption: 'Orders', empty: 'No orders match these filters.' }));
    more.hidden = !nextCursor;
    selection.textContent = selected.size ? `${selected.size} selected` : '';
    closeSelected.disabled = selected.size === 0;
  }

  function row(order) {
    const pick = h('input', { type: 'checkbox', 'aria-label': `Select order ${order.order_number}`, checked: selected.has(order.id) });
    pick.addEventListener('change', () => {
      if (pick.checked) selected.add(order.id);
      else selected.delete(order.id);
      draw();
    });
    const jobs = order.jobs || { total: 0, completed: 0 };
    return h('tr', { dataset: { id: order.id } },
      h('td', { class: 'select' }, pick),
      cell('Order', h('a', { href: `#${path`/orders/${order.id}`}` }, order.order_number), ' ', completeMark(order.is_complete)),
      cell('Customer', order.customer_name || order.customer_email || '—'),
      cell('Fulfilment', fmtDate(order.fulfillment_date), ' ', dueBadge(order)),
      cell('Status', badge(order.status)),
      cell('Jobs', jobs.total ? [progress(jobs.completed, jobs.total, `jobs of ${order.order_number}`),
        ` ${jobs.completed}/${jobs.total}`] : `${order.job_count ?? 0} planned`),
      cell('Updated', new Date(order.updated_at).toLocaleString()));
  }

  function dueBadge(order) {
    const due = dueState(order, localToday());
    const badges = due ? [h('span', { class: `due due-${due}` }, DUE_LABELS[due])] : [];
    if (forecastLate(order)) badges.push(' ', h('span', { class: 'due due-forecast' }, 'Forecast late'));
    const said = forecastText(order);
    if (said) badges.push(h('div', { class: 'forecast muted' }, said));
    return badges;
  }

  async function closeOrders() {
    toggleMenu(false);
    const ids = [...selected];
    if (!ids.length) return;
    try {
      const reply = await api.post('/orders/close', { order_ids: ids });
      const names = new Map(orders.map((o) => [o.id, o.order_number]));
      const lines = [h('p', {}, `Closed ${reply.closed.length} order${reply.closed.length === 1 ? '' : 's'}.`)];
      if (reply.rejected.length) {
        lines.push(h('p', {}, `Not closed:`), h('ul', {},
          reply.rejected.map((r) => h('li', {}, `${names.get(r.id) || r.id}: ${r.reason}`))));
      }
      replace(result, h('div', { class: reply.rejected.length ? 'notice warn' : 'notice ok', role: 'status' }, lines));
      reply.closed.forEach((id) => selected.delete(id));
      await load();
    } catch (error) {
      if (error.name === 'AbortError') return;
      replace(result, h('div', { class: 'notice warn', role: 'alert' }, error.message));
    }
  }

  function newOrder() {
    const form = h('form', { class: 'grid', novalidate: true },
      field('Order number', h('input', { name: 'order_number', required: true, autocomplete: 'off' })),
      field('Customer name', h('input', { name: 'customer_name', autocomplete: 'off' })),
      field('Customer email', h('input', { name: 'customer_email', type: 'email', autocomplete: 'off' })),
      field('Fulfilment date', h('input', { name: 'fulfillment_date', type: 'date' })),
      field('Notes', h('textarea', { name: 'notes', rows: 3 }), { wide: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create order')));
    const { close } = openDialog('New order', form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const body = Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ''));
        const order = await api.create('/orders', body);
        close();
        go(path`/orders/${order.id}`);
      });
    });
  }

  const refetchOne = new Map();
  function refreshOrder(id) {
    if (!refetchOne.has(id)) {
      refetchOne.set(id, scope.debounce(() => scope.run((async () => {
        const fresh = await api.get(path`/orders/${id}`);
        const i = orders.findIndex((o) => o.id === id);
        if (i >= 0 && scope.alive) {
          orders[i] = fresh;
          draw();
        }
      })(), (error) => {
        if (error.status === 404) reload();
        else showError(error);
      }), 400));
    }
    refetchOne.get(id)();
  }

  scope.on('order.updated', (event) => {
    const i = orders.findIndex((o) => o.id === event.id);
    if (i < 0) {
      reload();
      return;
    }
    const hidden = event.status === 'closed' && !filters.include_closed;
    const wrongStatus = filters.status && event.status !== filters.status;
    if (hidden || wrongStatus) {
      orders.splice(i, 1);
      selected.delete(event.id);
    } else {
      const { status: s, is_complete, order_number, customer_name, customer_email, updated_at } = event;
      Object.assign(orders[i], { status: s, is_complete, order_number, customer_name, customer_email, updated_at });
      refreshOrder(event.id);
    }
    draw();
  });
  scope.on('job.updated', (job) => { if (orders.some((o) => o.id === job.order_id)) refreshOrder(job.order_id); });
  scope.on('resync', () => reload());
  // A forecast moves with things no order event reports (a spool loaded, a print running long): the
  // orders shown with open jobs are asked again now and then.
  const FORECAST_REFRESH_MS = 15000;
  const forecasts = setInterval(() => {
    for (const o of orders) if ((o.jobs?.queued || 0) + (o.jobs?.printing || 0) > 0) refreshOrder(o.id);
  }, FORECAST_REFRESH_MS);
  scope.onLeave(() => clearInterval(forecasts));

  await load();
}
