// Dead letters (operators; replay for admins): messages a service gave up on, why, and replaying one
// once the cause is fixed.
import { path } from '../api.js';
import { refreshDeadLetters } from '../dead_letters_badge.js';
import { cell, confirmDialog, fmtTime, h, replace, showError, table, toast } from '../dom.js';

const COLUMNS = ['Consumer', 'Subject', 'Message', 'Error', 'Times', 'Last', ''];

export async function render(root, { scope }) {
  const { api } = scope;
  const list = h('div', {});
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Dead letters'),
      h('button', { type: 'button', onclick: () => scope.run(load(), showError) }, 'Refresh')),
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
        onclick: () => scope.run(replay(item), showError) },
      'Replay')));
  }

  async function replay(item) {
    const sure = await confirmDialog('Replay this message?',
      `${item.subject} goes to ${item.consumer} again. Replay only after fixing what made it fail.`, 'Replay');
    if (!sure) return;
    try {
      await api.post(path`/dead-letters/${item.message_id}/replay`);
      toast(`Replayed ${item.message_id}`);
    } finally {
      await load();
    }
  }

  scope.on('resync', () => scope.run(load(), showError));
  await load();
}
