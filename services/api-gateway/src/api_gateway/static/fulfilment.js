// When an order is due, against today, and when the queue forecasts it done: the badges and the at-risk
// filter of the orders list.

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

/** The queue forecasts it done after its fulfilment date, or nothing can print it (not for a finished order). */
export function forecastLate(order) {
  if (!order.forecast || order.is_complete || FINISHED.has(order.status)) return false;
  return Boolean(order.forecast.late);
}

/** What the forecast says, in a few words: the expected completion, or what blocks the order; '' without one. */
export function forecastText(order, formatTime = (iso) => new Date(iso).toLocaleString()) {
  const forecast = order.forecast;
  if (!forecast) return '';
  if (forecast.blocked_by) return `Blocked: ${forecast.blocked_by}`;
  if (!forecast.completes_at) return '';
  return `${order.is_complete ? 'Completed' : 'Forecast'} ${formatTime(forecast.completes_at)}`;
}

/** At risk: late, due within DUE_SOON_DAYS or forecast late, and not complete. */
export const atRisk = (order, today) => dueState(order, today) !== null || forecastLate(order);
