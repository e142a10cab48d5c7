// The hash router: which screen shows, and the Scope that ends everything a screen started when it is left.
import { ApiError, client, isAbort, withQuery } from './api.js';
import { debounce, h, replace } from './dom.js';
import { live } from './live.js';

const ROUTES = [
  [/^\/orders$/, './screens/orders.js'],
  [/^\/orders\/([^/]+)$/, './screens/order.js'],
  [/^\/queue$/, './screens/queue.js'],
  [/^\/materials$/, './screens/materials.js'],
  [/^\/printers$/, './screens/printers.js'],
  [/^\/printers\/([^/]+)$/, './screens/printer.js'],
  [/^\/customers$/, './screens/customers.js'],
  [/^\/skus$/, './screens/skus.js'],
  [/^\/account$/, './screens/account.js'],
  [/^\/users$/, './screens/users.js'],
  [/^\/webhooks$/, './screens/webhooks.js'],
  [/^\/dead-letters$/, './screens/dead_letters.js'],
  [/^\/analytics$/, './screens/analytics.js'],
  [/^\/login$/, './screens/login.js'],
];

export function go(to) {
  if (location.hash.slice(1) === to) route();
  else location.hash = to;
}

/** Rewrites the current address (filters, tabs) without adding history or re-rendering. */
export function setQuery(query) {
  const here = location.hash.slice(1).split('?')[0];
  history.replaceState(null, '', `#${withQuery(here, query)}`);
}

/**
 * What a screen gets besides its root: live subscriptions, timers and requests that all end when the
 * screen is left (`api` calls are aborted, `debounce`d reloads cancelled, `on` handlers removed).
 */
export class Scope {
  constructor() {
    this.alive = true;
    this.cleanups = [];
    this.controller = new AbortController();
    this.api = client(this.controller.signal);
  }

  on(name, fn) {
    this.cleanups.push(live.on(name, (data) => this.alive && fn(data)));
  }

  onLeave(fn) {
    this.cleanups.push(fn);
  }

  debounce(fn, ms) {
    const wrapped = debounce((...args) => {
      if (this.alive) fn(...args);
    }, ms);
    this.cleanups.push(wrapped.cancel);
    return wrapped;
  }

  /** Runs a background reload; its failure is shown (a cancelled one is not a failure). */
  run(promise, report) {
    return Promise.resolve(promise).catch((error) => {
      if (isAbort(error) || !this.alive) return;
      report(error);
    });
  }

  end() {
    this.alive = false;
    this.controller.abort();
    this.cleanups.forEach((fn) => fn());
  }
}

let current = null;

export async function route() {
  const [here, search] = (location.hash.slice(1) || '/orders').split('?');
  const found = ROUTES.map(([re, module]) => [here.match(re), module]).find(([m]) => m);
  if (!found) {
    go('/orders');
    return;
  }
  if (current) current.end();
  document.querySelectorAll('dialog[open]').forEach((dialog) => dialog.close());
  const scope = new Scope();
  current = scope;
  document.querySelectorAll('nav.main a').forEach((a) => {
    if (here.startsWith(a.getAttribute('href').slice(1))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.body.classList.toggle('signed-out', here === '/login');
  const root = document.getElementById('view');
  root.setAttribute('aria-busy', 'true');
  try {
    const screen = await import(found[1]);
    if (!scope.alive) return;
    replace(root);
    const params = found[0].slice(1).map((p) => decodeURIComponent(p));
    await screen.render(root, { params, query: new URLSearchParams(search || ''), scope });
  } catch (error) {
    if (!scope.alive || isAbort(error)) return;
    if (error instanceof ApiError && error.status === 401) return;
    console.error(error);
    replace(root, h('h1', { tabindex: -1 }, 'Something went wrong'),
      h('p', { class: 'form-error', role: 'alert' }, error.message || String(error)));
  } finally {
    if (scope.alive) root.removeAttribute('aria-busy');
  }
  if (!scope.alive) return;
  const heading = root.querySelector('h1');
  if (heading && !root.contains(document.activeElement)) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}
