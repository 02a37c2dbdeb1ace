// The auditor pages' browser side: pinning a verifier key (a PUBLIC key, kept in localStorage),
// "Verify in this browser" on an event page, and the consistency checks of the checkpoint
// history. All checking is done by tlog-verify.js; this file only fetches (same origin, the
// session cookie) and reports. Loaded as a module by the pages that need it; no inline script.
import { parseVerifierKey, verifyEvent, verifyCheckpointPair, verifyCheckpoint } from './tlog-verify.js';

const PIN = 'custos.pinnedVerifierKey';

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function fetchOk(url, as) {
  const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: as === 'text' ? 'text/plain' : 'application/json' } });
  if (!r.ok) throw new Error(`${url.split('?')[0]} answered ${r.status}`);
  return as === 'text' ? r.text() : r.json();
}

/** The key form: shows the pinned key and its key id, lets the auditor pin another one. */
async function keyPanel(root) {
  const out = root.querySelector('[data-pinned-key]');
  const form = root.querySelector('form[data-pin-form]');
  const show = async () => {
    const vkey = localStorage.getItem(PIN);
    if (!vkey) {
      out.textContent = 'No verifier key pinned in this browser yet.';
      return null;
    }
    try {
      const k = await parseVerifierKey(vkey);
      out.textContent = `Pinned key: ${k.name}, key id ${k.keyIdHex}`;
      return vkey;
    } catch (e) {
      out.textContent = `The pinned key is not valid (${e.message}); pin it again.`;
      return null;
    }
  };
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = form.querySelector('textarea, input[name="vkey"]').value.trim();
      try {
        await parseVerifierKey(value);
        localStorage.setItem(PIN, value);
      } catch (e) {
        out.textContent = `Not pinned: ${e.message}`;
        return;
      }
      await show();
    });
  }
  return show();
}

function report(box, result, okTitle) {
  box.replaceChildren();
  box.classList.remove('verify-ok', 'verify-fail');
  box.classList.add(result.ok ? 'verify-ok' : 'verify-fail');
  box.setAttribute('data-result', result.ok ? 'ok' : 'fail');
  if (!result.ok && result.index !== undefined) box.setAttribute('data-failed-index', String(result.index));
  const title = result.ok
    ? okTitle
    : `Verification FAILED${result.index !== undefined ? ` at index ${result.index}` : ''} (${result.step}): ${result.error}`;
  box.append(el('p', { class: 'verify-title' }, title));
  const list = el('ol');
  for (const c of result.checks) list.append(el('li', {}, `✓ ${c}`));
  if (!result.ok) list.append(el('li', {}, `✗ ${result.error}`));
  box.append(list);
}

/** Event page: checks the event shown (its JSON, as the API lists it, is in `data-event`). */
async function eventVerifier(root) {
  const button = root.querySelector('[data-verify-event]');
  const box = root.querySelector('[data-verify-result]');
  const data = root.getAttribute('data-event');
  if (!button || !box || !data) return;
  button.addEventListener('click', async () => {
    box.textContent = 'Checking…';
    const pinnedKey = localStorage.getItem(PIN);
    if (!pinnedKey) {
      box.textContent = 'Pin a verifier key first (below).';
      return;
    }
    try {
      const event = JSON.parse(data);
      const base = root.getAttribute('data-api');
      const origin = root.getAttribute('data-origin');
      const checkpoint = await fetchOk(`${base}/checkpoint?ledger=${event.ledger_id}`, 'text');
      const size = checkpoint.split('\n')[1];
      if (BigInt(size) <= BigInt(event.seq)) {
        box.textContent = `The latest checkpoint (size ${size}) does not cover index ${event.seq} yet; try again shortly.`;
        return;
      }
      const proof = await fetchOk(`${base}/proofs/inclusion?ledger=${event.ledger_id}&index=${event.seq}&tree_size=${size}`);
      const result = await verifyEvent({ event, checkpoint, proof, pinnedKey, origin });
      report(box, result, `Verified in this browser: event ${event.seq} is in the signed ledger.`);
    } catch (e) {
      box.textContent = `Could not check: ${e.message}`;
      box.setAttribute('data-result', 'error');
    }
  });
}

/** Checkpoint history: each signature, and consistency between successive checkpoints. */
async function checkpointVerifier(root) {
  const button = root.querySelector('[data-verify-checkpoints]');
  const box = root.querySelector('[data-verify-result]');
  if (!button || !box) return;
  button.addEventListener('click', async () => {
    const pinnedKey = localStorage.getItem(PIN);
    if (!pinnedKey) {
      box.textContent = 'Pin a verifier key first (below).';
      return;
    }
    const base = root.getAttribute('data-api');
    const origin = root.getAttribute('data-origin');
    const ledger = root.getAttribute('data-ledger');
    const expectedOrigin = `${origin}/${ledger}`;
    const notes = [...root.querySelectorAll('[data-checkpoint-note]')].map((n) => n.textContent);
    box.textContent = 'Checking…';
    const checks = [];
    try {
      const key = await parseVerifierKey(pinnedKey);
      // Oldest first: each checkpoint must extend the one before it.
      notes.reverse();
      for (const n of notes) await verifyCheckpoint(n, key, expectedOrigin);
      checks.push(`${notes.length} checkpoint signatures by the pinned key (key id ${key.keyIdHex})`);
      for (let i = 1; i < notes.length; i++) {
        const from = notes[i - 1].split('\n')[1];
        const to = notes[i].split('\n')[1];
        const consistency = await fetchOk(`${base}/proofs/consistency?ledger=${ledger}&from=${from}&to=${to}`);
        const r = await verifyCheckpointPair({ older: notes[i - 1], newer: notes[i], consistency, pinnedKey, expectedOrigin });
        if (!r.ok) {
          report(box, { ok: false, step: r.step, error: `between sizes ${from} and ${to}: ${r.error}`, checks }, '');
          return;
        }
        checks.push(r.checks[1]);
      }
      report(box, { ok: true, checks }, `Verified in this browser: ${notes.length} checkpoints, each consistent with the one before.`);
    } catch (e) {
      report(box, { ok: false, step: e.step || 'fetch', error: e.message, checks }, '');
    }
  });
}

for (const root of document.querySelectorAll('[data-auditor]')) {
  keyPanel(root);
  eventVerifier(root);
  checkpointVerifier(root);
}
