// Webhooks (admins): where order-completed and job-failed events are POSTed, signed; every delivery
// and attempt, and a test ping.
import { path } from '../api.js';
import {
  badge, cell, checkbox, confirmDialog, field, fmtTime, h, openDialog, replace, showError, submitting, table, toast,
} from '../dom.js';

const EVENTS = [['order.completed', 'Order completed (ready to ship)'], ['job.failed', 'Job failed']];

export async function render(root, { query, scope }) {
  const { api } = scope;
  const list = h('div', {});
  const deliveries = h('section', { 'aria-live': 'polite' });
  let hooks = [];
  let shown = query.get('id') || '';

  root.append(h('div', { class: 'title-row' }, h('h1', {}, 'Webhooks'),
    h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'Add webhook')),
  h('p', { class: 'muted' }, 'Each event is POSTed as its CloudEvents envelope with X-Printfarm-Timestamp and ',
    h('code', {}, 'X-Printfarm-Signature: sha256=HMAC-SHA256(secret, "<timestamp>.<body>")'),
    '; a failed delivery is retried with exponential backoff.'),
  list, deliveries);

  async function load() {
    hooks = (await api.get('/webhooks')).items;
    if (!scope.alive) return;
    replace(list, table(['Address', 'Events', 'Status', 'Updated', ''], hooks.map((w) => h('tr', { dataset: { id: w.id } },
      cell('Address', h('code', { class: 'url' }, w.url), w.description ? h('div', { class: 'muted' }, w.description) : null),
      cell('Events', w.events.join(', ')),
      cell('Status', w.enabled ? h('span', { class: 'ok' }, 'enabled') : h('span', { class: 'warn-text' }, 'paused')),
      cell('Updated', fmtTime(w.updated_at)),
      cell('', h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'link', 'aria-label': `Deliveries to ${w.url}`, onclick: () => scope.run(showDeliveries(w), showError) }, 'Deliveries'),
        h('button', { type: 'button', class: 'link', 'aria-label': `Send test to ${w.url}`, onclick: () => scope.run(ping(w), showError) }, 'Send test'),
        h('button', { type: 'button', class: 'link', 'aria-label': `Edit ${w.url}`, onclick: () => edit(w) }, 'Edit'),
        h('button', { type: 'button', class: 'link danger', 'aria-label': `Delete ${w.url}`, onclick: () => scope.run(remove(w), showError) }, 'Delete'))))),
    { caption: 'Webhooks', empty: 'No webhooks: add one so a shop hears when its order is ready.' }));
    const current = hooks.find((w) => w.id === shown);
    if (current) await showDeliveries(current);
  }

  async function showDeliveries(w) {
    shown = w.id;
    const page = await api.get(path`/webhooks/${w.id}/deliveries`, { limit: 50 });
    if (!scope.alive || shown !== w.id) return;
    replace(deliveries, h('h2', {}, `Deliveries to ${w.url}`),
      h('button', { type: 'button', onclick: () => scope.run(showDeliveries(w), showError) }, 'Refresh'),
      table(['Event', 'Status', 'Attempts', 'Last answer', 'Next attempt', 'Created'], page.items.map((d) => h('tr', { dataset: { id: d.id } },
        cell('Event', d.event_type, h('div', { class: 'muted' }, d.envelope?.subject || d.event_id)),
        cell('Status', badge(d.status === 'delivered' ? 'completed' : d.status === 'failed' ? 'failed' : 'queued'), ` ${d.status}`),
        cell('Attempts', h('ol', { class: 'attempts' }, d.history.map((a) => h('li', {},
          `${fmtTime(a.started_at)}: ${a.status_code ? `HTTP ${a.status_code}` : a.error} (${a.duration_ms} ms)`)))),
        cell('Last answer', d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || '—'),
        cell('Next attempt', d.status === 'pending' ? fmtTime(d.next_attempt_at) : '—'),
        cell('Created', fmtTime(d.created_at)))),
      { caption: `Deliveries to ${w.url}`, empty: 'Nothing sent yet.' }));
  }

  async function ping(w) {
    await api.post(path`/webhooks/${w.id}/ping`);
    toast(`Test sent to ${w.url}.`);
    await showDeliveries(w);
  }

  async function remove(w) {
    if (!(await confirmDialog('Delete webhook', `Delete the webhook to ${w.url} and its delivery history?`, 'Delete'))) return;
    await api.del(path`/webhooks/${w.id}`);
    if (shown === w.id) replace(deliveries);
    await load();
  }

  function edit(w) {
    const url = h('input', { name: 'url', type: 'url', required: true, autocomplete: 'off', value: w?.url || '', placeholder: 'https://shop.example/hooks/printfarm' });
    const secret = h('input', { name: 'secret', type: 'password', autocomplete: 'new-password', required: !w });
    const description = h('input', { name: 'description', autocomplete: 'off', value: w?.description || '' });
    const enabled = h('input', { name: 'enabled', type: 'checkbox', checked: w ? w.enabled : true });
    const boxes = EVENTS.map(([value, label]) => checkbox(label, h('input', { type: 'checkbox', name: 'event', value, checked: w ? w.events.includes(value) : true })));
    const form = h('form', { class: 'grid', novalidate: true },
      field('Address', url, { wide: true }),
      field('Secret', secret, { hint: w ? 'Leave empty to keep the current one; it is never shown.' : 'At least 16 characters; the receiver checks signatures with it. Never shown again.' }),
      field('Description', description),
      h('fieldset', { class: 'wide', dataset: { field: 'events' } }, h('legend', {}, 'Events'), boxes),
      checkbox('Enabled', enabled),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, w ? 'Save webhook' : 'Add webhook')));
    const { close } = openDialog(w ? 'Edit webhook' : 'Add a webhook', form, { wide: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const body = { url: url.value.trim(), description: description.value.trim(), enabled: enabled.checked,
          events: [...form.querySelectorAll('input[name=event]:checked')].map((c) => c.value) };
        if (secret.value) body.secret = secret.value;
        if (w) await api.patch(path`/webhooks/${w.id}`, body);
        else await api.create('/webhooks', body);
        close();
        toast(w ? 'Webhook saved.' : 'Webhook added.');
        await load();
      });
    });
  }

  scope.on('order.completed', () => { const w = hooks.find((x) => x.id === shown); if (w) scope.run(showDeliveries(w), showError); });
  await load();
}
