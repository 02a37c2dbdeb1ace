// The admin's pages: users (the one-time password shown once and never again), care teams,
// break-glass grants, ledger and key health; then the new auditor's first sign-in in another
// browser profile, with a TOTP computed here, and the review queue.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { BASE, firstSignIn, freshTotp, launch, loadState, nav, saveState, shoot, signIn } from '../lib/harness.js';

const auditorEmail = 'auditor@browser.example';
const auditorPassword = 'ledger watcher quietly checks 7';
let admin; // browser profile 1
let auditor; // browser profile 2
let otp;

before(async () => {
  admin = await launch();
  auditor = await launch();
  const { admin: a } = loadState();
  assert.ok(a, '01-admin.test.js runs first');
  const code = a.recoveryCodes.shift();
  saveState({ admin: a });
  await signIn(admin.page, a.email, a.password, async () => code);
  assert.equal(new URL(admin.page.url()).pathname, '/console/');
});

after(async () => {
  for (const b of [admin, auditor]) {
    assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
    assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
    await b.close();
  }
});


test('the admin creates an auditor and sees the one-time password once, never again', async () => {
  const p = admin.page;
  await nav(p, 'Users');
  await p.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  await shoot(p, '10-users');
  await p.getByLabel('Email', { exact: true }).fill(auditorEmail);
  await p.getByLabel('Display name', { exact: true }).fill('Ada Auditor');
  await p.getByLabel('Role', { exact: true }).selectOption('auditor');
  await p.getByRole('button', { name: 'Create account' }).click();
  otp = (await p.locator('#one-time-password').textContent()).trim();
  assert.match(otp, /^[A-Za-z2-9]{20}$/);
  await shoot(p, '11-user-created');
  const res = await p.goto(`${BASE}/console/users`);
  assert.equal(res.headers()['cache-control'], 'no-store');
  const html = await p.content();
  assert.ok(html.includes(auditorEmail), 'the new account is listed');
  assert.ok(!html.includes(otp), 'the one-time password is never shown again');
  assert.equal(await p.locator('#one-time-password').count(), 0);
});

test('care teams, break-glass and health pages', async () => {
  const p = admin.page;
  await nav(p, 'Care teams');
  await p.getByLabel('Patient ID').waitFor();
  await shoot(p, '12-care-teams');
  await nav(p, 'Break-glass');
  await p.getByRole('heading', { name: 'Break-glass grants' }).waitFor();
  await shoot(p, '13-break-glass');
  await nav(p, 'Health');
  await p.getByRole('heading', { name: 'Ledger and key health' }).waitFor();
  assert.ok((await p.locator('dl.facts').textContent()).includes('inbox depth'));
  await shoot(p, '14-health');
});

test('an admin is refused the auditors\' review queue', async () => {
  const res = await admin.page.goto(`${BASE}/console/review`);
  assert.equal(res.status(), 403);
  await shoot(admin.page, '15-forbidden');
  // Recorded by the API's audit wrapper, like a refused /v1/ request.
  const sql = "SELECT count(*) FROM (SELECT reason, outcome::text FROM audit_inbox UNION ALL "
    + "SELECT reason, outcome::text FROM audit_log) e "
    + "WHERE outcome = 'denied' AND reason LIKE 'reviewer_role_required (GET /console/review %'";
  const n = execFileSync('psql', [process.env.CUSTOS_DATABASE_URL, '-tAc', sql], { encoding: 'utf8' }).trim();
  assert.equal(n, '1', 'the refusal is in the ledger once');
});

test('the auditor signs in in another browser profile: password change, MFA, review queue', async () => {
  const p = auditor.page;
  const a = await firstSignIn(p, auditorEmail, otp, auditorPassword, '20-auditor');
  await p.getByRole('link', { name: 'Continue to the console' }).click();
  await nav(p, 'Review');
  await p.getByRole('heading', { name: 'Privacy review' }).waitFor();
  await shoot(p, '21-review');
  // The admin pages are not the auditor's.
  const res = await p.goto(`${BASE}/console/users`);
  assert.equal(res.status(), 403);
  saveState({ auditor: { email: auditorEmail, password: auditorPassword, secret: a.secret, step: a.step, recoveryCodes: a.recoveryCodes } });
  // A fresh TOTP signs the auditor in again (after the one used for enrolment).
  await p.goto(`${BASE}/console/`);
  await p.getByRole('button', { name: 'Sign out' }).click();
  await signIn(p, auditorEmail, auditorPassword, async () => (await freshTotp(a.secret, a.step)).code);
  assert.equal(new URL(p.url()).pathname, '/console/');
  const s = loadState().auditor;
  s.step = Math.floor(Date.now() / 30000);
  saveState({ auditor: s });
});
