// Your account: who you are, your password, your API tokens, and browser notifications.
import { path } from '../api.js';
import { cell, confirmDialog, field, fmtTime, h, openDialog, replace, select, showError, submitting, table, toast } from '../dom.js';
import { allowBrowserNotifications, browserNotificationsAllowed, browserNotificationsSupported } from '../notify.js';
import { changePassword, currentUser } from '../session.js';

const ROLES = ['viewer', 'operator', 'admin'];

export async function render(root, { scope }) {
  const { api } = scope;
  const me = currentUser() || (await api.get('/auth/me'));
  const tokens = h('div', {});
  const notices = h('div', {});

  root.append(h('h1', {}, 'Your account'),
    h('section', { class: 'panel', 'aria-labelledby': 'me-h' }, h('h2', { id: 'me-h' }, 'Signed in'),
      h('p', {}, h('strong', {}, me.name), ` · role ${me.role}`, me.expires_at ? ` · until ${fmtTime(me.expires_at)}` : ''),
      me.via === 'session' ? h('button', { type: 'button', onclick: changePassword }, 'Change password') : null),
    h('section', { class: 'panel', 'aria-labelledby': 'notify-h' }, h('h2', { id: 'notify-h' }, 'Notifications'),
      h('p', { class: 'muted' }, 'A message appears here when an order completes or a job fails. The browser can also notify you while this tab is in the background.'),
      notices),
    h('section', { 'aria-labelledby': 'tokens-h' },
      h('div', { class: 'title-row' }, h('h2', { id: 'tokens-h' }, me.role === 'admin' ? 'API tokens (everyone’s)' : 'Your API tokens'),
        h('button', { type: 'button', class: 'primary', onclick: newToken }, 'New token')),
      tokens));

  function drawNotices() {
    if (!browserNotificationsSupported()) {
      replace(notices, h('p', {}, 'This browser cannot show notifications.'));
    } else if (browserNotificationsAllowed()) {
      replace(notices, h('p', { class: 'ok' }, 'Browser notifications are on.'));
    } else if (Notification.permission === 'denied') {
      replace(notices, h('p', {}, 'Browser notifications are blocked for this site; allow them in the browser’s site settings.'));
    } else {
      replace(notices, h('button', { type: 'button', onclick: async () => { await allowBrowserNotifications(); drawNotices(); } },
        'Turn on browser notifications'));
    }
  }

  async function load() {
    const reply = await api.get('/auth/tokens');
    if (!scope.alive) return;
    replace(tokens, table(['Name', 'Token', 'Role', 'Created', 'Expires', ''], reply.items.map((t) => h('tr', {},
      cell('Name', t.name), cell('Token', h('code', {}, t.hint)), cell('Role', t.role),
      cell('Created', fmtTime(t.created_at)), cell('Expires', t.expires_at ? fmtTime(t.expires_at) : 'never'),
      cell('', h('button', { type: 'button', class: 'link danger', 'aria-label': `Revoke token ${t.name}`,
        onclick: () => scope.run(revoke(t), showError) }, 'Revoke')))),
    { caption: 'API tokens', empty: 'No API tokens.' }));
  }

  async function revoke(t) {
    if (!(await confirmDialog('Revoke token', `Revoke “${t.name}”? Scripts using it stop working at once.`, 'Revoke'))) return;
    await api.del(path`/auth/tokens/${t.id}`);
    toast(`Token ${t.name} revoked.`);
    await load();
  }

  function newToken() {
    const allowed = ROLES.slice(0, ROLES.indexOf(me.role) + 1);
    const name = h('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'shop sync script' });
    const role = select('role', allowed.map((r) => [r, r]), me.role);
    const expires = h('input', { name: 'expires_at', type: 'date' });
    const form = h('form', { class: 'grid', novalidate: true },
      field('Name', name), field('Role', role, { hint: 'At most your own.' }),
      field('Expires', expires, { hint: 'Empty: in 90 days. At most a year.' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
    const { dialog, close } = openDialog('New API token', form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const body = { name: name.value.trim(), role: role.value };
        if (expires.value) body.expires_at = new Date(`${expires.value}T23:59:59`).toISOString();
        const created = await api.create('/auth/tokens', body);
        const secret = h('input', { readonly: true, value: created.token, 'aria-label': 'The new token', class: 'secret' });
        replace(form, h('p', {}, 'Copy the token now: it is not shown again.'), secret,
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: close }, 'Done')));
        secret.select();
        dialog.addEventListener('close', () => scope.run(load(), showError));
      });
    });
  }

  drawNotices();
  await load();
}
