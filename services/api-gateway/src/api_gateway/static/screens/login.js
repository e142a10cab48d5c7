// Login page: username + password → session cookie (the CSRF cookie comes with it).
import { api } from '../api.js';
import { go } from '../router.js';
import { signedIn } from '../session.js';
import { field, h, submitting } from '../dom.js';

export async function render(root, { query }) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login panel', novalidate: true },
    h('h1', {}, 'Sign in to printfarm'),
    field('Username', username),
    field('Password', password),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitting(form, async () => {
      await api.post('/auth/login', { username: username.value.trim(), password: password.value });
      signedIn(await api.get('/auth/me'));
      const next = query.get('next') || '/orders';
      go(next.startsWith('/login') ? '/orders' : next);
    });
  });
  root.append(form);
  username.focus();
}
