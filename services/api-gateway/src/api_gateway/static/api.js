// The API client: one call to /api/v1 with the cookie session and CSRF header, problems as ApiError.

const CSRF_COOKIE = 'pf_csrf';
const CSRF_HEADER = 'X-CSRF-Token';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** True for a request cancelled because its screen was left: nothing to report. */
export const isAbort = (error) => Boolean(error) && error.name === 'AbortError';

let unauthorized = () => {};

/** The session module decides what a 401 means (back to the login page); the client only reports it. */
export function onUnauthorized(fn) {
  unauthorized = fn;
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

/** path`/orders/${id}/cancel`: every interpolated value is percent-encoded as one path segment. */
export function path(strings, ...values) {
  return strings.reduce((out, text, i) => out + text + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
}

export function withQuery(base, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const text = params.toString();
  return text ? `${base}?${text}` : base;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  if (!type.includes('json')) return response.text();
  try {
    return await response.json();
  } catch (error) {
    console.warn(`unreadable JSON from ${response.url}`, error);
    return null;
  }
}

/**
 * One call to /api/v1. Resolves to {data, etag}; a non-2xx answer rejects with an ApiError carrying
 * the problem details. `signal` cancels it (an AbortError, see isAbort).
 */
export async function request(method, apiPath, { json, form, query, headers = {}, signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers }, signal };
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
    response = await fetch(withQuery(`/api/v1${apiPath}`, query), init);
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, { title: 'Network error', detail: 'The server cannot be reached; try again.' });
  }
  const body = await readBody(response);
  if (!response.ok) {
    const problem = body && typeof body === 'object' ? body : { title: response.statusText, detail: String(body || '') };
    if (response.status === 401 && apiPath !== '/auth/login') unauthorized();
    throw new ApiError(response.status, problem);
  }
  return { data: body, etag: response.headers.get('etag') };
}

/** The calls screens make; `client(signal)` binds them to a signal so leaving a screen cancels them. */
export function client(signal) {
  const call = (method, apiPath, options) => request(method, apiPath, { ...options, signal });
  return {
    request: call,
    get: async (apiPath, query) => (await call('GET', apiPath, { query })).data,
    post: async (apiPath, json, headers) => (await call('POST', apiPath, { json, headers })).data,
    patch: async (apiPath, json, headers) => (await call('PATCH', apiPath, { json, headers })).data,
    put: async (apiPath, json, headers) => (await call('PUT', apiPath, { json, headers })).data,
    del: async (apiPath, headers) => (await call('DELETE', apiPath, { headers })).data,
    /** A creating POST that is safe to repeat: the gateway answers a retry with the first result. */
    create: async (apiPath, json) => (await call('POST', apiPath, { json, headers: { 'Idempotency-Key': newKey() } })).data,
    upload: async (apiPath, form) => (await call('POST', apiPath, { form, headers: { 'Idempotency-Key': newKey() } })).data,
  };
}

/** Calls that outlive any screen (dialogs, the session). */
export const api = client(undefined);
