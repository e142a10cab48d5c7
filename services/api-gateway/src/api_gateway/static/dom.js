// Small DOM toolkit shared by the screens: element builder, labelled fields, dialogs, problem display.

const SVG = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'circle', 'rect']);

let counter = 0;
export const uid = (prefix = 'el') => `${prefix}-${++counter}`;

/** h('button', {class: 'primary', onclick: fn}, 'Save') — strings become text nodes, null/false are skipped. */
export function h(tag, attrs = {}, ...children) {
  const node = SVG_TAGS.has(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'style') throw new Error('inline styles are refused by the Content-Security-Policy; use a class');
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'value' || key === 'checked' || key === 'selected') node[key] = value;
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A labelled form field; the input gets an id so the label points at it. */
export function field(label, input, { hint, wide } = {}) {
  if (!input.id) input.id = uid('f');
  const parts = [h('label', { for: input.id }, label), input];
  if (hint) {
    const hintId = uid('hint');
    input.setAttribute('aria-describedby', hintId);
    parts.push(h('small', { id: hintId, class: 'hint' }, hint));
  }
  return h('div', { class: wide ? 'field wide' : 'field' }, parts);
}

export function checkbox(label, input) {
  if (!input.id) input.id = uid('c');
  return h('div', { class: 'field check' }, input, h('label', { for: input.id }, label));
}

export function select(name, options, value) {
  return h('select', { name },
    options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, text)));
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A colour chip drawn as SVG (its fill is an attribute, not an inline style the CSP would refuse). */
export function swatch(color, label) {
  const text = label || (color ? `colour ${color}` : 'no colour');
  const fill = safeColor(color);
  return h('svg', { class: fill ? 'swatch' : 'swatch none', viewBox: '0 0 16 16', role: 'img', 'aria-label': text },
    h('rect', { x: 0.5, y: 0.5, width: 15, height: 15, rx: 3, fill: fill || 'none' }));
}

function safeColor(color) {
  const hex = String(color || '').match(/^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$/);
  return hex ? `#${hex[1]}` : null;
}

export function badge(status) {
  return h('span', { class: `badge status-${status}` }, String(status || '').replace('_', ' '));
}

export function completeMark(isComplete) {
  return isComplete ? h('span', { class: 'complete-mark', role: 'img', 'aria-label': 'complete', title: 'complete' }, '✔') : null;
}

/** A native <progress>: its width comes from the stylesheet, so no inline style is needed. */
export function progress(done, total, label) {
  const pct = total > 0 ? Math.round((100 * done) / total) : 0;
  return h('progress', { class: 'progress', max: 100, value: pct, 'aria-label': label || 'progress' }, `${pct}%`);
}

export function fmtDate(value) {
  return value ? String(value).slice(0, 10) : '—';
}

export function fmtTime(value) {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function fmtNumber(value, digits = 0) {
  return value === null || value === undefined ? '—' : Number(value).toFixed(digits);
}

/** Clears earlier problem messages of a form. */
export function clearProblems(form) {
  form.querySelectorAll('.field-error').forEach((n) => n.remove());
  form.querySelectorAll('[aria-invalid]').forEach((n) => {
    n.removeAttribute('aria-invalid');
    const keep = (n.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.startsWith('err-'));
    if (keep.length) n.setAttribute('aria-describedby', keep.join(' '));
    else n.removeAttribute('aria-describedby');
  });
  const summary = form.querySelector(':scope > .form-error');
  if (summary) summary.remove();
}

function fieldFor(form, name) {
  const candidates = [name, name.replace(/\[\d+\]/g, ''), name.split('.').pop(), name.split('.').pop().replace(/\[\d+\]/g, '')];
  for (const candidate of candidates) {
    const found = form.querySelector(`[name="${CSS.escape(candidate)}"], [data-field="${CSS.escape(candidate)}"]`);
    if (found) return found;
  }
  return null;
}

/** Shows an API problem: each `errors[].field` next to its input, the rest above the buttons. */
export function showProblem(form, error) {
  clearProblems(form);
  const problem = error.problem || { detail: error.message };
  const loose = [];
  for (const item of problem.errors || []) {
    const input = item.field ? fieldFor(form, item.field) : null;
    if (!input) {
      loose.push(item.field ? `${item.field}: ${item.message}` : item.message);
      continue;
    }
    const id = uid('err');
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', `${input.getAttribute('aria-describedby') || ''} ${id}`.trim());
    const message = h('p', { class: 'field-error', id }, item.message);
    (input.closest('.field') || input).append(message);
  }
  const shown = (problem.errors || []).length - loose.length;
  const text = loose.length ? loose.join('; ') : shown ? '' : problem.detail || problem.title || error.message;
  if (text || !shown) {
    const note = h('p', { class: 'form-error', role: 'alert' }, text || 'Please correct the marked fields.');
    const actions = form.querySelector(':scope > .actions');
    if (actions) form.insertBefore(note, actions);
    else form.append(note);
  } else {
    form.prepend(h('p', { class: 'form-error', role: 'alert' }, 'Please correct the marked fields.'));
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

/** Runs `action` for a form submit: buttons disabled meanwhile, problems shown next to fields. */
export async function submitting(form, action) {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.dataset.wasDisabled = b.disabled ? '1' : ''; b.disabled = true; });
  clearProblems(form);
  try {
    return await action();
  } catch (error) {
    if (error && error.problem !== undefined) showProblem(form, error);
    else throw error;
    return undefined;
  } finally {
    buttons.forEach((b) => { b.disabled = b.dataset.wasDisabled === '1'; });
  }
}

/** A modal <dialog>; `body` is built by the caller, closing removes it. */
export function openDialog(title, body, { wide } = {}) {
  const titleId = uid('dlg');
  const close = () => dialog.close();
  const dialog = h('dialog', { class: wide ? 'wide' : null, 'aria-labelledby': titleId },
    h('header', {}, h('h2', { id: titleId }, title),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close dialog', onclick: close }, '✕')),
    body);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector('input:not([type=hidden]), select, textarea');
  if (first) first.focus();
  return { dialog, close };
}

export function confirmDialog(title, text, okLabel) {
  return new Promise((resolve) => {
    let answer = false;
    const form = h('form', { method: 'dialog' }, h('p', {}, text),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', onclick: () => { answer = true; } }, okLabel),
        h('button', { type: 'submit' }, 'Keep')));
    const { dialog } = openDialog(title, form);
    dialog.addEventListener('close', () => resolve(answer));
  });
}

/** A short message in the corner; errors stay longer and are announced at once. */
export function toast(message, kind = 'info') {
  const region = document.getElementById('toasts');
  const note = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message,
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss', onclick: () => note.remove() }, '✕'));
  region.append(note);
  setTimeout(() => note.remove(), kind === 'error' ? 12000 : 6000);
}

/** Shows a failed background call; a cancelled one (its screen was left) is not a failure. */
export function showError(error) {
  if (error && error.name === 'AbortError') return;
  console.error(error);
  toast(error && error.message ? error.message : String(error), 'error');
}

/** A table whose cells carry their column name, so the phone layout can show label: value rows. */
export function table(columns, rows, { caption, empty = 'Nothing here yet.' } = {}) {
  const body = h('tbody', {}, rows);
  if (!rows.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards' }, caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class || null }, c.label ?? c)))),
      body));
}

/** One cell; its content is wrapped so the phone layout keeps it in one column beside the label. */
export function cell(label, ...content) {
  return h('td', { 'data-label': label }, h('div', { class: 'cell' }, content));
}
