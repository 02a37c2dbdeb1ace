// The auditor's pages: an auditor (created by the admin through the API) signs in with a TOTP
// computed here, filters events, verifies an event's inclusion proof in the page; a superuser
// tampers with that ledger entry in the database and the same check fails at its index; the
// checkpoint history verifies; a CSV export downloads and parses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { BASE, firstSignIn, freshTotp, launch, loadState, psql, shoot, signIn } from '../lib/harness.js';

const auditorEmail = 'auditor@browser.example';
const auditorPassword = 'violet harbor engine quietly 93';
let b;
let eventSeq;
let ledger;

async function api(path, body, token) {
  const res = await fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}


/** Flips one stored field of ledger entry `seq` (applying it twice restores the row). */
function flipOutcome(seq) {
  psql(`BEGIN; ALTER TABLE audit_log DISABLE TRIGGER ALL;
        UPDATE audit_log SET outcome = CASE outcome WHEN 'success' THEN 'denied'::audit_outcome ELSE 'success'::audit_outcome END
        WHERE ledger_id = '${ledger}' AND seq = ${Number(seq)};
        ALTER TABLE audit_log ENABLE TRIGGER ALL; COMMIT;`);
}

async function verifyInPage(page) {
  // The checkpointer signs a few seconds after an event; wait until a checkpoint covers it.
  for (let i = 0; i < 40; i++) {
    await page.getByRole('button', { name: 'Verify in this browser' }).click();
    const box = page.locator('[data-verify-result]');
    await page.waitForFunction(() => {
      const t = document.querySelector('[data-verify-result]').textContent;
      return t && t !== 'Checking…';
    });
    if (!/does not cover index/.test(await box.textContent())) return box;
    await page.waitForTimeout(500);
  }
  throw new Error('no checkpoint covered the event');
}

before(async () => { b = await launch(); });
after(async () => {
  assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
  assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
  await b.close();
});

test('the auditor signs in with a TOTP computed here', async () => {
  const state = loadState();
  if (state.auditor) {
    // 02-admin-pages.test.js created the auditor through the admin pages and enrolled MFA.
    const a = state.auditor;
    await signIn(b.page, a.email, a.password, async () => (await freshTotp(a.secret, a.step)).code);
  } else {
    const { admin } = state;
    assert.ok(admin, '01-admin.test.js ran first');
    const login = await api('/v1/auth/login', { email: admin.email, password: admin.password });
    const { code } = await freshTotp(admin.secret, Math.floor(Date.now() / 30000));
    const tokens = await api('/v1/auth/mfa/verify', { mfa_token: login.mfa_token, code });
    const created = await api('/v1/admin/users', { email: auditorEmail, role: 'auditor', display_name: 'Ada Auditor' }, tokens.access_token);
    await firstSignIn(b.page, auditorEmail, created.one_time_password, auditorPassword, '20-auditor');
  }
  await b.page.goto(`${BASE}/console/`);
  await b.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events' }).click();
  await b.page.getByRole('heading', { name: 'Events' }).waitFor();
});

test('the event browser filters by action and pages by cursor', async () => {
  const page = b.page;
  await page.getByLabel('Action').selectOption('login');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/action=login/);
  const rows = page.locator('table.events tbody tr');
  assert.ok((await rows.count()) >= 2, 'the admin and the auditor signed in');
  const actions = await page.locator('table.events tbody tr td:nth-child(5)').allTextContents();
  assert.ok(actions.every((a) => a.trim() === 'login'), actions.join(','));
  await shoot(page, '21-events-filtered');
  const bad = await page.goto(`${BASE}/console/events?actor=not-a-uuid`);
  assert.equal(bad.status(), 422, "a malformed filter is a clear 4xx");
  await page.goto(`${BASE}/console/events?action=login`);
  // The admin's sign-in: the oldest login on the page.
  const link = page.locator('table.events tbody tr td:first-child a').last();
  eventSeq = Number((await link.textContent()).trim());
  await link.click();
  await page.getByRole('heading', { name: `Event ${eventSeq}` }).waitFor();
  ledger = JSON.parse(await page.locator('[data-event]').getAttribute('data-event')).ledger_id;
});

test('verify in this browser: the pinned key, the leaf, the path, the root', async () => {
  const page = b.page;
  // The key an auditor got from the organization's published list (here: GET /v1/audit/keys).
  const keys = await (await fetch(`${BASE}/v1/audit/keys`)).json();
  await page.getByRole('textbox', { name: /^Verifier key/ }).fill(keys.keys[0]);
  await page.getByRole('button', { name: 'Pin this key' }).click();
  await page.locator('[data-pinned-key]', { hasText: 'key id' }).waitFor();
  const box = await verifyInPage(page);
  assert.equal(await box.getAttribute('data-result'), 'ok', await box.textContent());
  const text = await box.textContent();
  const keyId = keys.keys[0].split('+')[1];
  assert.match(text, new RegExp(`pinned [^ ]+\\+${keyId}`));
  assert.match(text, new RegExp(`leaf hash at index ${eventSeq} recomputed`));
  assert.match(text, /inclusion path of length \d+/);
  assert.match(text, /root equality/);
  await shoot(page, '22-event-verified');
});

test('a superuser tamper of that entry makes the same check fail at its index', async () => {
  const page = b.page;
  flipOutcome(eventSeq);
  try {
    await page.reload();
    const box = await verifyInPage(page);
    assert.equal(await box.getAttribute('data-result'), 'fail', await box.textContent());
    assert.equal(await box.getAttribute('data-failed-index'), String(eventSeq));
    assert.match(await box.textContent(), new RegExp(`FAILED at index ${eventSeq}`));
    await shoot(page, '23-event-tampered');
  } finally {
    flipOutcome(eventSeq);
  }
  await page.reload();
  const box = await verifyInPage(page);
  assert.equal(await box.getAttribute('data-result'), 'ok', 'restored entry verifies again');
});

test('checkpoint history: signatures and consistency checked in the browser', async () => {
  const page = b.page;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Checkpoints' }).click();
  await page.getByRole('heading', { name: 'Checkpoints' }).waitFor();
  await page.getByRole('button', { name: 'Verify these checkpoints in this browser' }).click();
  const box = page.locator('[data-verify-result][data-result]');
  await box.waitFor();
  assert.equal(await box.getAttribute('data-result'), 'ok', await box.textContent());
  assert.match(await box.textContent(), /checkpoint signatures by the pinned key/);
  await shoot(page, '24-checkpoints-verified');
});

test('a CSV export downloads and parses', async () => {
  const page = b.page;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Exports' }).click();
  await page.getByRole('heading', { name: 'Exports' }).waitFor();
  await shoot(page, '25-exports');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).click()]);
  const text = readFileSync(await download.path(), 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /^ledger_id,seq,format_version,event_id,occurred_at,/);
  assert.ok(lines.length > 2, 'events exported');
  const cells = lines[1].split(',');
  assert.equal(cells[0], ledger);
  assert.match(cells[1], /^\d+$/);
});
