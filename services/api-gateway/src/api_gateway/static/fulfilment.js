// When an order is due, against today: the badges and the at-risk filter of the orders list.

export const DUE_SOON_DAYS = 3;

const FINISHED = new Set(['completed', 'cancelled', 'closed']);

/** Today's date in the browser's time zone, as YYYY-MM-DD (how fulfilment dates are written). */
export function localToday(now = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function addDays(isoDate, days) {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** 'late' | 'today' | 'soon' | null: null for an order without a date or one already finished. */
export function dueState(order, today) {
  const date = order.fulfillment_date ? String(order.fulfillment_date).slice(0, 10) : '';
  if (!date || order.is_complete || FINISHED.has(order.status)) return null;
  if (date < today) return 'late';
  if (date === today) return 'today';
  if (date <= addDays(today, DUE_SOON_DAYS)) return 'soon';
  return null;
}

export const DUE_LABELS = { late: 'Late', today: 'Due today', soon: 'Due soon' };

/** At risk: late, or due within DUE_SOON_DAYS, and not complete. */
export const atRisk = (order, today) => dueState(order, today) !== null;
