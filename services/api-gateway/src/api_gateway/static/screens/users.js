// Users (admins): invite people, set their role, disable them, set a forgotten password.
import { path } from '../api.js';
import { cell, confirmDialog, field, fmtTime, h, openDialog, replace, select, showError, submitting, table, toast } from '../dom.js';

const ROLES = [['viewer', 'viewer (reads)'], ['operator', 'operator (runs the farm)'], ['admin', 'admin (people, printers, webhooks)']];

export async function render(root, { scope }) {
  const { api } = scope;
  const list = h('div', {});
  root.append(h('div', { class: 'title-row' }, h('h1', {}, 'Users'),
    h('button', { type: 'button', class: 'primary', onclick: invite }, 'Invite user')), list);

  async function load() {
    const reply = await api.get('/users');
    if (!scope.alive) return;
    replace(list, table(['User', 'Role', 'Status', 'Created', 'Password changed', ''], reply.items.map((u) => {
      const role = select('role', ROLES.map(([value]) => [value, value]), u.role);
      role.setAttribute('aria-label', `Role of ${u.username}`);
      role.addEventListener('change', () => scope.run(change(u, { role: role.value }), (error) => { showError(error); scope.run(load(), showError); }));
      return h('tr', { dataset: { id: u.id } },
        cell('User', h('strong', {}, u.username)),
        cell('Role', role),
        cell('Status', u.disabled ? h('span', { class: 'warn-text' }, 'disabled') : 'active'),
        cell('Created', fmtTime(u.created_at)),
        cell('Password changed', fmtTime(u.password_changed_at)),
        cell('', h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'link', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}`,
            onclick: () => scope.run(toggle(u), showError) }, u.disabled ? 'Enable' : 'Disable'),
          h('button', { type: 'button', class: 'link', 'aria-label': `Set password of ${u.username}`,
            onclick: () => setPassword(u) }, 'Set password'))));
    }), { caption: 'Users', empty: 'No users.' }));
  }

  async function change(u, body) {
    await api.patch(path`/users/${u.id}`, body);
    toast(`${u.username} updated.`);
    await load();
  }

  async function toggle(u) {
    if (!u.disabled && !(await confirmDialog('Disable user', `Disable ${u.username}? Their sessions and tokens stop at once.`, 'Disable'))) return;
    await change(u, { disabled: !u.disabled });
  }

  function setPassword(u) {
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
    const form = h('form', { novalidate: true }, field('New password', password, { hint: 'At least 10 characters. Their sessions end.' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Set password')));
    const { close } = openDialog(`Password of ${u.username}`, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        await api.post(path`/users/${u.id}/password`, { password: password.value });
        close();
        toast(`Password of ${u.username} set.`);
      });
    });
  }

  function invite() {
    const username = h('input', { name: 'username', required: true, autocomplete: 'off' });
    const role = select('role', ROLES, 'viewer');
    const form = h('form', { class: 'grid', novalidate: true }, field('Username', username), field('Role', role),
      h('p', { class: 'wide muted' }, 'A password is generated and shown once: hand it over; they change it after signing in.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Invite')));
    const { dialog, close } = openDialog('Invite a user', form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const created = await api.create('/users', { username: username.value.trim(), role: role.value });
        const secret = h('input', { readonly: true, value: created.password, 'aria-label': `Password for ${created.username}`, class: 'secret' });
        replace(form, h('p', {}, `${created.username} can sign in with this password (shown once):`), secret,
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: close }, 'Done')));
        secret.select();
        dialog.addEventListener('close', () => scope.run(load(), showError));
      });
    });
  }

  await load();
}
