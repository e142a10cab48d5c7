// Orders list: search and filters (kept in the address), the green check, bulk close, new order.
import { api, go, setQuery } from './app.js';
import {
  badge, cell, checkbox, completeMark, debounce, field, fmtDate, h, openDialog, progress, replace, select,
  submitting, table, toast,
} from './dom.js';

const STATUSES = [['', 'Any status'], ['open', 'Open'], ['queued', 'Queued'], ['printing', 'Printing'],
  ['completed', 'Completed'], ['cancelled', 'Cancelled'], ['closed', 'Closed']];

export async function render(root, { query, scope }) {
  const filters = {
    q: query.get('q') || '',
    customer: query.get('customer') || '',
    fulfillment_from: query.get('from') || '',
    fulfillment_to: query.get('to') || '',
    status: query.get('status') || '',
    include_closed: query.get('closed') === '1',
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
  const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter orders' },
    field('Order number', q), field('Customer', customer), field('Fulfilment from', from), field('Fulfilment to', to),
    field('Status', status), checkbox('Show closed orders', closed));
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
  const more = h('button', { type: 'button', hidden: true, onclick: () => load(true) }, 'Load more');

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
    setQuery({ q: filters.q, customer: filters.customer, from: filters.fulfillment_from, to: filters.fulfillment_to,
      status: filters.status, closed: closed.checked ? '1' : '' });
  }

  let generation = 0;
  async function load(append = false) {
    const mine = ++generation;
    const page = await api.get('/orders', { ...filters, include_closed: filters.include_closed ? 'true' : '',
      cursor: append ? nextCursor : null });
    if (mine !== generation || !scope.alive) return;
    orders = append ? [...orders, ...page.items] : page.items;
    nextCursor = page.next_cursor;
    for (const id of [...selected]) if (!orders.some((o) => o.id === id)) selected.delete(id);
    draw();
  }

  const reload = debounce(() => load().catch((e) => toast(e.message, 'error')), 250);
  for (const input of [q, customer]) input.addEventListener('input', () => { readFilters(); reload(); });
  for (const input of [from, to, status, closed]) input.addEventListener('change', () => { readFilters(); reload(); });

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
      cell('Order', h('a', { href: `#/orders/${order.id}` }, order.order_number), ' ', completeMark(order.is_complete)),
      cell('Customer', order.customer_name || order.customer_email || '—'),
      cell('Fulfilment', fmtDate(order.fulfillment_date)),
      cell('Status', badge(order.status)),
      cell('Jobs', jobs.total ? [progress(jobs.completed, jobs.total, `jobs of ${order.order_number}`),
        ` ${jobs.completed}/${jobs.total}`] : `${order.job_count ?? 0} planned`),
      cell('Updated', new Date(order.updated_at).toLocaleString()));
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
        go(`/orders/${order.id}`);
      });
    });
  }

  const refetchOne = new Map();
  function refreshOrder(id) {
    if (!refetchOne.has(id)) {
      refetchOne.set(id, debounce(async () => {
        try {
          const fresh = await api.get(`/orders/${id}`);
          const i = orders.findIndex((o) => o.id === id);
          if (i >= 0 && scope.alive) {
            orders[i] = fresh;
            draw();
          }
        } catch {
          // The list reload on the next change brings it right.
        }
      }, 400));
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

  await load();
}
