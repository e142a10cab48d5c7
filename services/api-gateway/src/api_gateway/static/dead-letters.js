// Dead letters: messages a service gave up on, why, and replaying one once the cause is fixed.
import { api, refreshDeadLetters } from './app.js';
import { cell, confirmDialog, fmtTime, h, replace, table, toast } from './dom.js';

const COLUMNS = ['Consumer', 'Subject', 'Message', 'Error', 'Times', 'Last', ''];

export async function render(root, { scope }) {
  const list = h('div', {});
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Dead letters'),
      h('button', { type: 'button', onclick: () => load() }, 'Refresh')),
    h('p', { class: 'muted' }, 'Messages a service could not apply after its retries. Fix the cause, then replay: ',
      'services that already applied a message skip it, the ones that gave up apply it.'),
    list);

  async function load() {
    const { items } = await api.get('/dead-letters');
    if (!scope.alive) return;
    replace(list, table(COLUMNS, items.map(row), { caption: 'Dead letters', empty: 'No dead letters.' }));
    refreshDeadLetters();
  }

  function row(item) {
    return h('tr', { dataset: { messageId: item.message_id } },
      cell('Consumer', item.consumer),
      cell('Subject', h('code', {}, item.subject)),
      cell('Message', h('code', { class: 'message-id' }, item.message_id)),
      cell('Error', h('span', { class: 'error-text' }, item.error)),
      cell('Times', String(item.count)),
      cell('Last', fmtTime(item.last_at)),
      cell('', h('button', { type: 'button', 'data-needs': 'admin', 'aria-label': `Replay ${item.message_id}`,
        onclick: () => replay(item) },
        'Replay')));
  }

  async function replay(item) {
    const sure = await confirmDialog('Replay this message?',
      `${item.subject} goes to ${item.consumer} again. Replay only after fixing what made it fail.`, 'Replay');
    if (!sure) return;
    try {
      await api.post(`/dead-letters/${encodeURIComponent(item.message_id)}/replay`);
      toast(`Replayed ${item.message_id}`);
    } catch (error) {
      toast(error.message, 'error');
    }
    await load();
  }

  scope.on('resync', load);
  await load();
}
