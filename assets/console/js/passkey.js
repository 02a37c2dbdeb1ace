// Custos Console: passkeys in the browser. The server runs every ceremony (options, state,
// checks, audit: auth::passkeys and auth::passkey_login, over src/console/passkeys.rs); this
// module only turns its JSON options into what navigator.credentials.create/get take (byte
// fields are base64url strings in JSON, ArrayBuffers in the browser), asks the authenticator,
// and posts the answer back with the CSRF header. Three places use it:
//   - the passkeys page: form[data-passkey-register] (name + password again) → create();
//   - the sign-in code step: [data-passkey="second-factor"] → get() for the account's passkeys;
//   - the sign-in page: [data-passkey="passwordless"] → get() for a discoverable passkey.
// Loaded as a module by those pages; no inline script. Tokens stay out of web storage: the MFA
// challenge is an HttpOnly cookie, the ceremony token lives only in this function's variables.
import { consoleFetch } from './console.js';

/** base64url (no padding) → ArrayBuffer. */
export function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** ArrayBuffer (or view) → base64url without padding. */
export function toB64url(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A copy of `v` without null members (the server's JSON has them; WebIDL dictionaries
 *  refuse null for enum and dictionary members). */
function dropNulls(v) {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, dropNulls(x)]));
  }
  return v;
}

/** The server's `options.publicKey` for a registration, as navigator.credentials.create takes it. */
export function creationOptions(publicKey) {
  const pk = dropNulls(publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  // A discoverable credential where the authenticator can make one, so that the same passkey
  // also serves passwordless sign-in; the server does not depend on it (its checks are the same).
  pk.authenticatorSelection = { ...(pk.authenticatorSelection || {}), residentKey: 'preferred', requireResidentKey: false };
  return pk;
}

/** The server's `options.publicKey` for a sign-in, as navigator.credentials.get takes it. */
export function requestOptions(publicKey) {
  const pk = dropNulls(publicKey);
  pk.challenge = fromB64url(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = pk.allowCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
  return pk;
}

/** A new credential as JSON for the server (webauthn-rs's RegisterPublicKeyCredential). */
export function registrationJson(cred) {
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: toB64url(cred.response.attestationObject),
      clientDataJSON: toB64url(cred.response.clientDataJSON),
    },
    extensions: {},
  };
}

/** An assertion as JSON for the server (webauthn-rs's PublicKeyCredential). */
export function assertionJson(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    extensions: {},
  };
}

/** POST `body` as JSON; returns [ok, status, parsed body]. */
async function postJson(url, body) {
  const res = await consoleFetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  let json = {};
  try { json = await res.json(); } catch { /* an empty or non-JSON answer */ }
  return [res.ok, res.status, json];
}

/** What to tell the person for a refused request (the server's message for the known cases). */
function refusal(status, json, fallback) {
  const code = json?.error?.code;
  if (status === 429) return 'Too many attempts. Wait a minute and try again.';
  if (code === 'passwordless_not_allowed') {
    return 'Your organization does not allow sign-in with a passkey alone: sign in with your email and password, then use the passkey.';
  }
  if (code === 'invalid_current_password') return 'The password is not correct.';
  if (status === 401) return fallback;
  return json?.error?.message ? `${fallback} (${json.error.message})` : fallback;
}

/** What to tell the person when the browser's ceremony failed. */
function browserFailure(e) {
  if (e && e.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out. Try again.';
  if (e && e.name === 'InvalidStateError') return 'This passkey is already registered to your account.';
  return 'The browser could not use a passkey here.';
}

function showError(text) {
  const box = document.getElementById('passkey-error');
  if (!box) return;
  box.textContent = text;
  box.hidden = !text;
}

/** The registration form on the passkeys page. */
function registerForm(form) {
  const button = form.querySelector('button[type="submit"]');
  button.disabled = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('');
    const label = form.elements.label.value;
    const password = form.elements.password.value;
    button.disabled = true;
    try {
      const [ok, status, started] = await postJson('/console/passkeys/register/start', { label, password });
      form.elements.password.value = '';
      if (!ok) {
        showError(refusal(status, started, 'The passkey registration could not start.'));
        return;
      }
      let cred;
      try {
        cred = await navigator.credentials.create({ publicKey: creationOptions(started.options.publicKey) });
      } catch (e) {
        showError(browserFailure(e));
        return;
      }
      const [done, st, fin] = await postJson('/console/passkeys/register/finish', {
        ceremony_token: started.ceremony_token,
        credential: registrationJson(cred),
      });
      if (!done) {
        showError(refusal(st, fin, 'The passkey was not accepted. Start again.'));
        return;
      }
      window.location.assign(fin.location);
    } finally {
      button.disabled = false;
    }
  });
}

/** A sign-in button: the second factor (`start`/`finish` under /console/sign-in/passkey) or
 *  passwordless (/console/sign-in/passwordless). */
function signInButton(box, kind) {
  const base = kind === 'passwordless' ? '/console/sign-in/passwordless' : '/console/sign-in/passkey';
  const button = box.querySelector('[data-passkey-button]');
  box.hidden = false;
  button.addEventListener('click', async () => {
    showError('');
    button.disabled = true;
    try {
      const [ok, status, started] = await postJson(`${base}/start`);
      if (!ok) {
        const again = 'Your sign-in has expired: start again with your password.';
        showError(status === 409 ? 'No passkey is registered for this account: enter a code instead.'
          : refusal(status, started, kind === 'passwordless' ? 'A passkey sign-in could not start.' : again));
        return;
      }
      let cred;
      try {
        cred = await navigator.credentials.get({ publicKey: requestOptions(started.options.publicKey) });
      } catch (e) {
        showError(browserFailure(e));
        return;
      }
      const [done, st, fin] = await postJson(`${base}/finish`, {
        ceremony_token: started.ceremony_token,
        credential: assertionJson(cred),
      });
      if (!done) {
        showError(refusal(st, fin, 'The passkey was not accepted, or the account is locked or disabled.'));
        return;
      }
      window.location.assign(fin.location);
    } finally {
      button.disabled = false;
    }
  });
}

function init() {
  const supported = typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
  const form = document.querySelector('form[data-passkey-register]');
  if (form) {
    if (supported) registerForm(form);
    else document.getElementById('passkey-unsupported').hidden = false;
  }
  if (!supported) return;
  for (const box of document.querySelectorAll('[data-passkey]')) signInButton(box, box.dataset.passkey);
}

init();
