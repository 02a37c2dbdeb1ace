// The "Done when", as one test and as docs/console.md tells a new user: a freshly
// bootstrapped organization's admin signs in with the one-time password, changes it, enrols
// MFA by the QR code (the test reads the key shown beside it and computes the TOTP, as a phone
// would), creates an auditor and sees the auditor's one-time password once; the auditor, in
// another browser profile, does the same first sign-in, finds the event of the admin's
// sign-in in the event browser and verifies its inclusion proof in the page. Every step is a
// screenshot: target/console-screenshots/walkthrough-NN-*.png (each checked by axe-core).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { BASE, freshTotp, launch, nav, pagePath as path, shoot } from '../lib/harness.js';

const ADMIN = 'first.admin@walkthrough.example';
const AUDITOR = 'ada.auditor@walkthrough.example';
const ADMIN_PASSWORD = 'walkthrough admin passphrase 2026';
const AUDITOR_PASSWORD = 'walkthrough auditor passphrase 2026';
let adminBrowser; // browser profile 1
let auditorBrowser; // browser profile 2

before(async () => {
  adminBrowser = await launch();
  auditorBrowser = await launch();
});
after(async () => {
  for (const b of [adminBrowser, auditorBrowser]) {
    assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
    assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
    await b.close();
  }
});


/** Sign-in form, then (first time) the forced password change and MFA enrolment. */
async function firstDay(page, email, oneTimePassword, password, n, who) {
  await page.goto(`${BASE}/console/`);
  assert.equal(path(page), '/console/sign-in');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(oneTimePassword);
  await shoot(page, `walkthrough-${n[0]}-${who}-sign-in`);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/console\/password$/);
  await page.getByLabel('Current password', { exact: true }).fill(oneTimePassword);
  await page.getByLabel('New password', { exact: true }).fill(password);
  await shoot(page, `walkthrough-${n[1]}-${who}-password-change`);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.waitForURL(/\/console\/mfa$/);
  await page.getByRole('button', { name: 'Set up the authenticator app' }).click();
  const qr = page.getByAltText('QR code for your authenticator app');
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/, 'the QR code is rendered by the server');
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await shoot(page, `walkthrough-${n[2]}-${who}-mfa-qr`);
  const { code, step } = await freshTotp(secret);
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  const codes = await page.getByRole('list', { name: 'Recovery codes' }).locator('code').allTextContents();
  assert.equal(codes.length, 10);
  await shoot(page, `walkthrough-${n[3]}-${who}-recovery-codes`);
  await page.getByRole('link', { name: 'Continue to the console' }).click();
  assert.equal(path(page), '/console/');
  return { secret, step };
}

test('walk-through: bootstrap admin → auditor → the admin\'s sign-in verified in the auditor\'s browser', async () => {
  // 0. The operator bootstraps the organization (README: `custos bootstrap`).
  const out = execFileSync(process.env.CUSTOS_BIN, ['bootstrap', '--org', 'Walkthrough Clinic', '--admin-email', ADMIN],
    { encoding: 'utf8' });
  const otp = out.match(/^one-time password.*: (\S+)$/m)[1];
  const org = out.match(/^organization: .* \(([0-9a-f-]{36})\)$/m)[1];
  const adminId = out.match(/^admin: .* \(([0-9a-f-]{36})\)$/m)[1];

  // 1–5. The admin's first sign-in, in browser profile 1.
  const a = adminBrowser.page;
  await firstDay(a, ADMIN, otp, ADMIN_PASSWORD, ['01', '02', '03', '04'], 'admin');
  await a.getByRole('navigation', { name: 'Main' }).waitFor();
  await shoot(a, 'walkthrough-05-admin-home');

  // 6. The admin creates the auditor; the one-time password is shown once.
  await nav(a, 'Users');
  await a.getByLabel('Email', { exact: true }).fill(AUDITOR);
  await a.getByLabel('Display name', { exact: true }).fill('Ada Auditor');
  await a.getByLabel('Role', { exact: true }).selectOption('auditor');
  await a.getByRole('button', { name: 'Create account' }).click();
  const auditorOtp = (await a.locator('#one-time-password').textContent()).trim();
  assert.match(auditorOtp, /^[A-Za-z2-9]{20}$/);
  await shoot(a, 'walkthrough-06-admin-created-auditor');
  await a.goto(`${BASE}/console/users`);
  assert.ok(!(await a.content()).includes(auditorOtp), 'shown once, never again');

  // 7–10. The auditor's first sign-in, in browser profile 2 (another user-data dir).
  const u = auditorBrowser.page;
  assert.equal((await auditorBrowser.context.cookies(BASE)).length, 0, 'a separate profile: no cookie of the admin');
  await firstDay(u, AUDITOR, auditorOtp, AUDITOR_PASSWORD, ['07', '08', '09', '10'], 'auditor');

  // 11. The event browser: sign-ins, the admin's among them.
  await nav(u, 'Events');
  await u.getByLabel('Action').selectOption('login');
  await u.getByLabel('Actor ID').fill(adminId);
  await u.getByRole('button', { name: 'Filter' }).click();
  await u.waitForURL(/action=login/);
  const rows = u.locator('table.events tbody tr');
  assert.ok((await rows.count()) >= 1, 'the admin signed in');
  const row = rows.last(); // the oldest: the first sign-in
  assert.equal((await row.locator('td').nth(2).textContent()).trim(), adminId);
  assert.equal((await row.locator('td').nth(3).textContent()).trim(), 'admin');
  await shoot(u, 'walkthrough-11-auditor-events');

  // 12. The event, and "Verify in this browser" against the key the auditor pins.
  const link = row.locator('td:first-child a');
  const seq = Number((await link.textContent()).trim());
  await link.click();
  await u.getByRole('heading', { name: `Event ${seq}` }).waitFor();
  const event = JSON.parse(await u.locator('[data-event]').getAttribute('data-event'));
  assert.equal(event.ledger_id, org);
  assert.equal(event.actor_id, adminId);
  const keys = await (await fetch(`${BASE}/v1/audit/keys`)).json();
  await u.getByRole('textbox', { name: /^Verifier key/ }).fill(keys.keys[0]);
  await u.getByRole('button', { name: 'Pin this key' }).click();
  await u.locator('[data-pinned-key]', { hasText: 'key id' }).waitFor();
  let box;
  for (let i = 0; i < 40; i++) {
    // The checkpointer signs a few seconds after an event.
    await u.getByRole('button', { name: 'Verify in this browser' }).click();
    box = u.locator('[data-verify-result]');
    await u.waitForFunction(() => {
      const t = document.querySelector('[data-verify-result]').textContent;
      return t && t !== 'Checking…';
    });
    if (!/does not cover index/.test(await box.textContent())) break;
    await u.waitForTimeout(500);
  }
  assert.equal(await box.getAttribute('data-result'), 'ok', await box.textContent());
  assert.match(await box.textContent(), new RegExp(`leaf hash at index ${seq} recomputed`));
  await shoot(u, 'walkthrough-12-auditor-proof-verified');
});
