// Notifications from the live stream: a toast when an order completes or a job fails, and a browser
// notification too when the user allowed them and is looking at another tab.
import { h, toast } from './dom.js';
import { live } from './live.js';

const seen = new Set();

/** Once per thing: a redelivered or replayed event after a reconnect does not notify twice. */
function firstTime(key) {
  if (seen.has(key)) return false;
  seen.add(key);
  if (seen.size > 2000) seen.delete(seen.values().next().value);
  return true;
}

export const browserNotificationsSupported = () => 'Notification' in window;

export const browserNotificationsAllowed = () => browserNotificationsSupported() && Notification.permission === 'granted';

/** Asks the browser (it must follow a click); resolves to the permission now in force. */
export async function allowBrowserNotifications() {
  if (!browserNotificationsSupported()) return 'unsupported';
  return Notification.requestPermission();
}

function desktop(title, body, link) {
  if (!browserNotificationsAllowed() || document.visibilityState === 'visible') return;
  const note = new Notification(title, { body, tag: link });
  note.addEventListener('click', () => {
    window.focus();
    location.hash = link;
    note.close();
  });
}

function orderCompleted(order) {
  if (!firstTime(`order:${order.id}`)) return;
  const link = `/orders/${encodeURIComponent(order.id)}`;
  toast(h('span', {}, 'Order ', h('a', { href: `#${link}` }, order.order_number), ' is complete: every job printed.'), 'ok');
  desktop(`Order ${order.order_number} complete`, 'Every job printed; ready to pack and ship.', link);
}

function jobChanged(job) {
  if (job.status !== 'failed' || !firstTime(`job:${job.id}:${job.revision ?? job.updated_at ?? ''}`)) return;
  const link = `/queue?tab=errored&order_id=${encodeURIComponent(job.order_id)}`;
  const what = `${job.part_name}${job.copy ? ` #${job.copy}` : ''} of order ${job.order_number}`;
  toast(h('span', {}, 'Job failed: ', h('a', { href: `#${link}` }, what), job.error ? ` — ${job.error}` : ''), 'error');
  desktop(`Job failed: ${what}`, job.error || 'The print failed; retry it from the queue.', link);
}

export function notifyFromLiveEvents() {
  live.on('order.completed', orderCompleted);
  live.on('job.updated', jobChanged);
}
