// Who is signed in: the header's name, role, Password and Log out; the role hides what it cannot do.
import { api, isAbort, onUnauthorized } from './api.js';
import { stopWatchingDeadLetters, watchDeadLetters } from './dead_letters_badge.js';
import { field, h, openDialog, replace, submitting, toast } from './dom.js';
import { live } from './live.js';
import { go } from './router.js';

let me = null;

export const currentUser = () => me;

function signedOut() {
  me = null;
  delete document.body.dataset.role;
  live.stop();
  stopWatchingDeadLetters();
  renderUser();
  const here = location.hash.slice(1) || '/orders';
  if (!here.startsWith('/login')) go(`/login?next=${encodeURIComponent(here)}`);
}

onUnauthorized(signedOut);

export function signedIn(user) {
  me = user;
  // What the role cannot do is hidden (styles.css: [data-needs]); the gateway refuses it anyway.
  document.body.dataset.role = user.role || 'viewer';
  renderUser();
  live.start();
  watchDeadLetters(document.body.dataset.role);
}

function renderUser() {
  const slot = document.getElementById('user');
  if (!me) {
    replace(slot);
    return;
  }
  replace(slot, h('a', { class: 'who', href: '#/account', title: `Role: ${me.role || 'viewer'}` }, me.name),
    me.via === 'session' ? h('button', { type: 'button', class: 'link', onclick: changePassword }, 'Password') : null,
    h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
}

export function changePassword() {
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
  } catch (error) {
    // A session that already ended (401) is what logging out wants; anything else is worth a line.
    if (error.status !== 401 && !isAbort(error)) console.warn('logging out failed; leaving anyway', error);
  }
  me = null;
  live.stop();
  stopWatchingDeadLetters();
  renderUser();
  go('/login');
}

/** On load: who the cookie belongs to. False when there is none (the login page is already on its way). */
export async function resume() {
  try {
    signedIn(await api.get('/auth/me'));
    return true;
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}
