// The entry point: resumes the session, starts notifications, and hands the address to the router.
import { notifyFromLiveEvents } from './notify.js';
import { route } from './router.js';
import { resume } from './session.js';

async function boot() {
  window.addEventListener('hashchange', route);
  notifyFromLiveEvents();
  if (!location.hash.slice(1).startsWith('/login')) {
    try {
      if (!(await resume())) return;
    } catch (error) {
      console.error('reading the session failed', error);
    }
  }
  await route();
}

boot();
