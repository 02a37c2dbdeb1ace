// Custos Console: the automatic-logoff warning. The server says (data-idle-seconds on <body>)
// how long the session lives without a request; two minutes before the end a warning appears,
// and "Stay signed in" makes a request (POST /console/ping with the CSRF header) that moves
// the session's last activity. At the end the page goes to the sign-in page.

const WARN_BEFORE = 120;

/** The CSRF token of this page, for fetch calls. */
export function csrfToken() {
  return document.body.dataset.csrf || '';
}

/** fetch() with the console's CSRF header, same-origin credentials, JSON accepted. */
export async function consoleFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set('X-CSRF-Token', csrfToken());
  headers.set('Accept', 'application/json');
  return fetch(url, { ...options, headers, credentials: 'same-origin' });
}

function startLogoffTimer() {
  const seconds = Number(document.body.dataset.idleSeconds || 0);
  const box = document.getElementById('logoff-warning');
  if (!seconds || !box) return;
  let deadline = Date.now() + seconds * 1000;
  const countdown = document.getElementById('logoff-countdown');
  const tick = () => {
    const left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) {
      window.location.assign('/console/sign-in');
      return;
    }
    if (left <= WARN_BEFORE) {
      if (box.hidden) box.hidden = false;
      const m = Math.floor(left / 60);
      const s = left % 60;
      countdown.textContent = m > 0 ? `${m} min ${s} s` : `${s} s`;
    } else if (!box.hidden) {
      box.hidden = true;
    }
  };
  document.getElementById('stay-signed-in')?.addEventListener('click', async () => {
    const res = await consoleFetch('/console/ping', { method: 'POST' });
    if (res.ok) {
      const body = await res.json();
      deadline = Date.now() + body.idle_seconds * 1000;
      box.hidden = true;
    } else {
      window.location.assign('/console/sign-in');
    }
  });
  tick();
  setInterval(tick, 1000);
}

startLogoffTimer();

// Buttons that print the page (the access report); the print stylesheet hides them.
for (const b of document.querySelectorAll('button[data-print]')) {
  b.addEventListener('click', () => window.print());
}
