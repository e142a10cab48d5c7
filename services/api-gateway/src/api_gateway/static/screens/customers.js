// Customers: who has ordered, searchable; each one's open orders and full history.
import { path } from '../api.js';
import { badge, cell, completeMark, field, fmtDate, fmtTime, h, replace, showError, table } from '../dom.js';
import { DUE_LABELS, dueState, localToday } from '../fulfilment.js';
import { setQuery } from '../router.js';

export async function render(root, { query, scope }) {
  const { api } = scope;
  const search = h('input', { name: 'q', type: 'search', value: query.get('q') || '', autocomplete: 'off', placeholder: 'name or email' });
  const list = h('div', {});
  const detail = h('section', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => scope.run(load(true), showError) }, 'Load more');
  let customers = [];
  let nextCursor = null;
  let generation = 0;

  root.append(h('h1', {}, 'Customers'),
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Find customers', onsubmit: (e) => e.preventDefault() },
      field('Name or email', search)),
    list, more, detail);

  async function load(append = false) {
    const mine = ++generation;
    const page = await api.get('/customers', { q: search.value.trim(), cursor: append ? nextCursor : null });
    if (mine !== generation || !scope.alive) return;
    customers = append ? [...customers, ...page.items] : page.items;
    nextCursor = page.next_cursor;
    replace(list, table(['Customer', 'Email', 'Orders', 'Open orders', 'Last order', ''], customers.map((c) => h('tr', {},
      cell('Customer', c.name || '—'),
      cell('Email', c.email || '—'),
      cell('Orders', c.orders),
      cell('Open orders', c.open_orders),
      cell('Last order', fmtTime(c.last_order_at)),
      cell('', h('button', { type: 'button', class: 'link', 'aria-label': `Orders of ${c.name || c.email}`,
        onclick: () => scope.run(show(c), showError) }, 'Orders')))),
    { caption: 'Customers', empty: 'No customer matches.' }));
    more.hidden = !nextCursor;
  }

  async function show(customer) {
    const who = customer.email || customer.name;
    const page = await api.get('/orders', { customer: who, include_closed: 'true', sort: '-created_at', limit: 100 });
    if (!scope.alive) return;
    const today = localToday();
    const open = page.items.filter((o) => !['completed', 'cancelled', 'closed'].includes(o.status));
    const rows = (orders) => orders.map((o) => {
      const due = dueState(o, today);
      return h('tr', {},
        cell('Order', h('a', { href: `#${path`/orders/${o.id}`}` }, o.order_number), ' ', completeMark(o.is_complete)),
        cell('Fulfilment', fmtDate(o.fulfillment_date), due ? [' ', h('span', { class: `due due-${due}` }, DUE_LABELS[due])] : null),
        cell('Status', badge(o.status)),
        cell('Created', fmtTime(o.created_at)));
    });
    const heading = h('h2', { id: 'customer-h', tabindex: -1 }, `Orders of ${customer.name || customer.email}`);
    replace(detail, heading,
      customer.email ? h('p', { class: 'muted' }, h('a', { href: `#/orders?customer=${encodeURIComponent(customer.email)}&closed=1` }, 'Open in the orders list')) : null,
      h('h3', {}, `Open orders (${open.length})`),
      table(['Order', 'Fulfilment', 'Status', 'Created'], rows(open), { caption: 'Open orders', empty: 'No open orders.' }),
      h('h3', {}, `All orders (${page.items.length}${page.next_cursor ? '+' : ''})`),
      table(['Order', 'Fulfilment', 'Status', 'Created'], rows(page.items), { caption: 'All orders', empty: 'No orders.' }));
    heading.focus();
  }

  search.addEventListener('input', scope.debounce(() => {
    setQuery({ q: search.value.trim() });
    scope.run(load(), showError);
  }, 250));
  await load();
}
