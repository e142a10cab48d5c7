// The shell: API client (cookie session + CSRF), live event stream, and the hash router.
import { field, h, openDialog, replace, submitting, toast } from './dom.js';

const CSRF_COOKIE = 'pf_csrf';
const CSRF_HEADER = 'X-CSRF-Token';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function cookie(name) {
  const found = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : '';
}

/** A random UUID without needing a secure context (plain HTTP on a farm LAN). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * One call to /api/v1. Resolves to {data, etag}; a non-2xx answer rejects with an ApiError carrying
 * the problem details, and a 401 sends the user to the login page.
 */
export async function request(method, path, { json, form, query, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (form) {
    init.body = form;
  }
  if (!['GET', 'HEAD'].includes(method)) {
    const csrf = cookie(CSRF_COOKIE);
    if (csrf) init.headers[CSRF_HEADER] = csrf;
  }
  let response;
  try {
    response = await fetch(withQuery(`/api/v1${path}`, query), init);
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'The server cannot be reached; try again.' });
  }
  const type = response.headers.get('content-type') || '';
  let body = null;
  if (response.status !== 204) body = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const problem = body && typeof body === 'object' ? body : { title: response.statusText, detail: String(body || '') };
    if (response.status === 401 && path !== '/auth/login') signedOut();
    throw new ApiError(response.status, problem);
  }
  return { data: body, etag: response.headers.get('etag') };
}

export const api = {
  get: async (path, query) => (await request('GET', path, { query })).data,
  post: async (path, json, headers) => (await request('POST', path, { json, headers })).data,
  patch: async (path, json, headers) => (await request('PATCH', path, { json, headers })).data,
  del: async (path, headers) => (await request('DELETE', path, { headers })).data,
  /** A creating POST that is safe to repeat: the gateway answers a retry with the first result. */
  create: async (path, json) => (await request('POST', path, { json, headers: { 'Idempotency-Key': newKey() } })).data,
  upload: async (path, form) => (await request('POST', path, { form, headers: { 'Idempotency-Key': newKey() } })).data,
};

// ---------------------------------------------------------------- live events

const EVENTS = ['order.updated', 'order.completed', 'job.updated', 'printer.updated'];

/**
 * EventSource on /api/v1/events. The browser reconnects by itself (with Last-Event-ID); when the
 * server refuses (the source closes) we reopen it ourselves from the last id. After any gap the
 * screens get a `resync` so they refetch what they show.
 */
class Live {
  constructor() {
    this.handlers = new Map();
    this.source = null;
    this.lastId = '';
    this.lost = false;
    this.retryMs = 1000;
    this.timer = null;
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name).delete(fn);
  }

  emit(name, data) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try {
        fn(data);
      } catch (error) {
        console.error(`live handler for ${name} failed`, error);
      }
    }
  }

  start() {
    if (this.source) return;
    const url = this.lastId ? `/api/v1/events?last_event_id=${encodeURIComponent(this.lastId)}` : '/api/v1/events';
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener('open', () => {
      this.retryMs = 1000;
      if (this.lost) {
        this.lost = false;
        this.emit('resync', null);
      }
      showBanner(false);
    });
    source.addEventListener('error', () => {
      this.lost = true;
      showBanner(true);
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reopen(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 15000);
      }
    });
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) this.lastId = event.lastEventId;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        this.emit(name, data);
      });
    }
  }

  async reopen() {
    try {
      await request('GET', '/auth/me');
    } catch (error) {
      if (error.status === 401) return;
    }
    this.start();
  }

  stop() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
    this.lost = false;
    showBanner(false);
  }
}

export const live = new Live();

function showBanner(lost) {
  const banner = document.getElementById('live-banner');
  banner.hidden = !lost;
  document.getElementById('live-state').textContent = lost ? 'Offline' : 'Live';
  document.getElementById('live-state').className = lost ? 'live off' : 'live on';
}

// ---------------------------------------------------------------- session

let me = null;

function signedOut() {
  me = null;
  delete document.body.dataset.role;
  live.stop();
  stopWatchingDeadLetters();
  renderUser();
  const here = location.hash.slice(1) || '/orders';
  if (!here.startsWith('/login')) go(`/login?next=${encodeURIComponent(here)}`);
}

export function signedIn(user) {
  me = user;
  // What the role cannot do is hidden (styles.css: [data-needs]); the gateway refuses it anyway.
  document.body.dataset.role = user.role || 'viewer';
  renderUser();
  live.start();
  watchDeadLetters();
}

function renderUser() {
  const slot = document.getElementById('user');
  if (!me) {
    replace(slot);
    return;
  }
  replace(slot, h('span', { class: 'who', title: `Role: ${me.role || 'viewer'}` }, me.name),
    me.via === 'session' ? h('button', { type: 'button', class: 'link', onclick: changePassword }, 'Password') : null,
    h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
}

function changePassword() {
  const current = h('input', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const form = h('form', { novalidate: true },
    field('Current password', current),
    field('New password', next, { hint: 'At least 10 characters. Your other sessions are signed out.' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Change password')));
  const { close } = openDialog('Change your password', form);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitting(form, async () => {
      await api.post('/auth/password', { current_password: current.value, new_password: next.value });
      close();
      toast('Password changed.');
    });
  });
}

async function logout() {
  try {
    await api.post('/auth/logout');
  } catch {
    // Already gone: the login page is where we end up either way.
  }
  me = null;
  live.stop();
  stopWatchingDeadLetters();
  renderUser();
  go('/login');
}

// ---------------------------------------------------------------- dead-letter badge

const DEAD_LETTER_POLL_MS = 30000;
let deadLetterTimer = null;

/** Dead letters have no live event: the badge asks every 30 s (and when a screen says it changed). */
export async function refreshDeadLetters() {
  const badge = document.getElementById('dead-letters');
  try {
    const { items } = await api.get('/dead-letters');
    badge.hidden = items.length === 0;
    badge.textContent = `${items.length} dead letter${items.length === 1 ? '' : 's'}`;
    badge.title = items.length ? `Messages a service gave up on; the newest: ${items[0].error}` : '';
  } catch {
    // The badge is a hint; the dead-letters page shows the error if the bus is unreachable.
  }
}

function watchDeadLetters() {
  stopWatchingDeadLetters();
  refreshDeadLetters();
  deadLetterTimer = setInterval(refreshDeadLetters, DEAD_LETTER_POLL_MS);
}

function stopWatchingDeadLetters() {
  clearInterval(deadLetterTimer);
  deadLetterTimer = null;
  document.getElementById('dead-letters').hidden = true;
}

// ---------------------------------------------------------------- router

const ROUTES = [
  [/^\/orders$/, './orders.js'],
  [/^\/orders\/([^/]+)$/, './order.js'],
  [/^\/queue$/, './queue.js'],
  [/^\/printers$/, './printers.js'],
  [/^\/skus$/, './skus.js'],
  [/^\/dead-letters$/, './dead-letters.js'],
  [/^\/login$/, './login.js'],
];

export function go(path) {
  if (location.hash.slice(1) === path) route();
  else location.hash = path;
}

/** Rewrites the current address (filters, tabs) without adding history or re-rendering. */
export function setQuery(query) {
  const path = location.hash.slice(1).split('?')[0];
  history.replaceState(null, '', `#${withQuery(path, query)}`);
}

let current = null;

/** What a screen gets: its root, route params, query, and subscriptions that end when it is left. */
class Scope {
  constructor() {
    this.alive = true;
    this.cleanups = [];
  }

  on(name, fn) {
    this.cleanups.push(live.on(name, (data) => this.alive && fn(data)));
  }

  onLeave(fn) {
    this.cleanups.push(fn);
  }

  end() {
    this.alive = false;
    this.cleanups.forEach((fn) => fn());
  }
}

async function route() {
  const [path, search] = (location.hash.slice(1) || '/orders').split('?');
  const found = ROUTES.map(([re, module]) => [path.match(re), module]).find(([m]) => m);
  if (!found) {
    go('/orders');
    return;
  }
  if (current) current.end();
  document.querySelectorAll('dialog[open]').forEach((dialog) => dialog.close());
  const scope = new Scope();
  current = scope;
  document.querySelectorAll('nav.main a').forEach((a) => {
    if (path.startsWith(a.getAttribute('href').slice(1))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.body.classList.toggle('signed-out', path === '/login');
  const root = document.getElementById('view');
  root.setAttribute('aria-busy', 'true');
  try {
    const screen = await import(found[1]);
    if (!scope.alive) return;
    replace(root);
    await screen.render(root, { params: found[0].slice(1), query: new URLSearchParams(search || ''), scope });
  } catch (error) {
    if (!scope.alive) return;
    if (error instanceof ApiError && error.status === 401) return;
    replace(root, h('h1', { tabindex: -1 }, 'Something went wrong'),
      h('p', { class: 'form-error', role: 'alert' }, error.message || String(error)));
  } finally {
    root.removeAttribute('aria-busy');
  }
  if (!scope.alive) return;
  const heading = root.querySelector('h1');
  if (heading && !root.contains(document.activeElement)) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

async function boot() {
  window.addEventListener('hashchange', route);
  const path = location.hash.slice(1);
  if (!path.startsWith('/login')) {
    try {
      signedIn(await api.get('/auth/me'));
    } catch (error) {
      if (error.status === 401) return;
      console.error(error);
    }
  }
  await route();
}

boot();
