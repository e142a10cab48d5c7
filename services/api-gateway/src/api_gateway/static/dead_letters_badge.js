// The header's dead-letter badge: how many messages the services gave up on, linking to their page.
// Dead letters have no live event: the badge asks every 30 s, and when the page says they changed.
import { api, isAbort } from './api.js';

const POLL_MS = 30000;
let timer = null;

const slot = () => document.getElementById('dead-letters');

/** Shows the count (hidden when there are none); a failure leaves the badge as it was and says why. */
export async function refreshDeadLetters() {
  try {
    show((await api.get('/dead-letters')).items);
  } catch (error) {
    if (isAbort(error)) return;
    if (error.status === 403) {
      slot().hidden = true; // the role may not list them (viewers)
      return;
    }
    console.warn('counting dead letters failed; the dead-letters page shows why', error);
  }
}

function show(items) {
  const badge = slot();
  badge.hidden = items.length === 0;
  badge.textContent = `${items.length} dead letter${items.length === 1 ? '' : 's'}`;
  badge.title = items.length ? `Messages a service gave up on; the newest: ${items[0].error}` : '';
}

/** Listing dead letters is for operators and admins: viewers never see the badge. */
export function watchDeadLetters(role) {
  stopWatchingDeadLetters();
  if (role !== 'operator' && role !== 'admin') return;
  refreshDeadLetters();
  timer = setInterval(refreshDeadLetters, POLL_MS);
}

export function stopWatchingDeadLetters() {
  clearInterval(timer);
  timer = null;
  slot().hidden = true;
}
