// The live event stream: one EventSource on /api/v1/events, resumed after gaps, fanned out by name.
import { request } from './api.js';

export const EVENTS = ['order.updated', 'order.completed', 'job.updated', 'printer.updated'];

/**
 * The browser reconnects by itself (with Last-Event-ID); when the server refuses (the source closes)
 * it is reopened from the last id. After any gap, listeners get a `resync` so they refetch.
 */
class Live {
  constructor() {
    this.handlers = new Map();
    this.source = null;
    this.lastId = '';
    this.lost = false;
    this.retryMs = 1000;
    this.timer = null;
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name).delete(fn);
  }

  emit(name, data) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try {
        fn(data);
      } catch (error) {
        console.error(`live handler for ${name} failed`, error);
      }
    }
  }

  start() {
    if (this.source) return;
    const url = this.lastId ? `/api/v1/events?last_event_id=${encodeURIComponent(this.lastId)}` : '/api/v1/events';
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener('open', () => {
      this.retryMs = 1000;
      if (this.lost) {
        this.lost = false;
        this.emit('resync', null);
      }
      this.emit('connection', { live: true });
    });
    source.addEventListener('error', () => {
      this.lost = true;
      this.emit('connection', { live: false });
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reopen(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 15000);
      }
    });
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) this.lastId = event.lastEventId;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          console.warn(`unreadable ${name} event ${event.lastEventId}`, error);
          return;
        }
        this.emit(name, data);
      });
    }
  }

  async reopen() {
    try {
      await request('GET', '/auth/me');
    } catch (error) {
      if (error.status === 401) return;
      console.warn('checking the session before reconnecting failed; reconnecting anyway', error);
    }
    this.start();
  }

  stop() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
    this.lost = false;
    this.emit('connection', { live: null });
  }
}

export const live = new Live();

/** The header's Live/Offline mark and the banner that says what is shown may be out of date. */
live.on('connection', ({ live: state }) => {
  document.getElementById('live-banner').hidden = state !== false;
  const mark = document.getElementById('live-state');
  mark.textContent = state ? 'Live' : 'Offline';
  mark.className = state ? 'live on' : 'live off';
});
