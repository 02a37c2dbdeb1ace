// The admin's security pages: Users → "Reset passkeys" (after a confirmation in the page; the
// API's reset-passkeys service) for a clinician whose passkey Chromium's virtual authenticator
// made, and the organization's sign-in policy page (the API's auth-policy service): the admin
// allows passwordless sign-in and sees it in force; turns on "staff must use a
// phishing-resistant factor" from a TOTP session, which restricts that very session; a form
// still open in another tab cannot turn it off again (refused, said plainly, recorded); after
// enrolling a passkey and signing in with it, the admin turns the policy off.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { authenticator, BASE, firstSignIn, freshTotp, launch, loadState, nav, pagePath as path, psql, registerPasskey, saveState, shoot, signIn, signOut } from '../lib/harness.js';

const ORG = 'Browser Test Clinic';
const staffEmail = 'lost-key-clinician@browser.example';
const staffPassword = 'a new key for every door 42';
const REQUIRE = 'Staff must use a phishing-resistant factor (a passkey)';
const PASSWORDLESS = 'Allow passwordless sign-in with a passkey';

/** The organization's policies as the database has them: `t|f` etc. */
const policy = () => psql(`SELECT require_phishing_resistant || '|' || allow_passwordless FROM organizations WHERE name = '${ORG}'`)
  .replace(/true/g, 't').replace(/false/g, 'f');
/** A fixture only: a failed earlier file must not leave the policy on for this one. */
const resetPolicy = () => psql(`UPDATE organizations SET require_phishing_resistant = false, allow_passwordless = false WHERE name = '${ORG}'`);
/** Events (inbox or log) whose reason matches `like`. */
const events = (like) => Number(psql(
  "SELECT count(*) FROM (SELECT reason FROM audit_inbox UNION ALL SELECT reason FROM audit_log) e "
  + `WHERE reason LIKE '${like}'`,
));
/** Passkeys the server holds under this name. */
const passkeysNamed = (label) => Number(psql(`SELECT count(*) FROM passkey_credentials WHERE label = '${label}'`));

let admin; // browser profile 1, with a virtual authenticator
let staff; // browser profile 2, with another
let a; // the admin's account (state of 01-admin.test.js)





before(async () => {
  a = loadState().admin;
  assert.ok(a, '01-admin.test.js runs first');
  resetPolicy();
  admin = await launch();
  admin.credentials = await authenticator(admin);
  staff = await launch();
  staff.credentials = await authenticator(staff);
  const code = a.recoveryCodes.shift();
  saveState({ admin: a });
  await signIn(admin.page, a.email, a.password, async () => code);
  assert.equal(path(admin.page), '/console/');
});

after(async () => {
  resetPolicy();
  for (const b of [admin, staff]) {
    if (!b) continue;
    assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
    assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
    await b.close();
  }
});

test("the admin resets a clinician's passkeys, after a confirmation", async () => {
  // A clinician with a passkey (made by profile 2's virtual authenticator).
  const p = admin.page;
  await nav(p, 'Users');
  await p.getByLabel('Email', { exact: true }).fill(staffEmail);
  await p.getByLabel('Display name', { exact: true }).fill('Lee Lostkey');
  await p.getByLabel('Role', { exact: true }).selectOption('clinician');
  await p.getByRole('button', { name: 'Create account' }).click();
  const otp = (await p.locator('#one-time-password').textContent()).trim();
  const s = staff.page;
  const { secret, step } = await firstSignIn(s, staffEmail, otp, staffPassword);
  await s.goto(`${BASE}/console/passkeys`);
  await registerPasskey(s, 'lost laptop', staffPassword);
  assert.equal((await staff.credentials()).length, 1);
  assert.equal(passkeysNamed('lost laptop'), 1, 'the server holds the passkey');

  // The admin: "Reset passkeys" only opens the confirmation; its button sends the form.
  await p.goto(`${BASE}/console/users`);
  const row = p.getByRole('row').filter({ hasText: staffEmail });
  const confirm = row.getByRole('button', { name: `Yes, reset passkeys of ${staffEmail}`, exact: true });
  assert.equal(await confirm.isVisible(), false, 'nothing is sent before the confirmation opens');
  await row.locator('summary').filter({ hasText: 'Reset passkeys' }).click();
  await confirm.waitFor();
  await row.getByText('deletes every passkey').waitFor();
  assert.equal(passkeysNamed('lost laptop'), 1, 'opening the confirmation changes nothing');
  await shoot(p, '40-users-reset-passkeys-confirm');
  await confirm.click();
  await p.waitForURL(/\/console\/users\?done=reset-passkeys$/);
  await p.getByRole('status').filter({ hasText: 'The passkeys were reset' }).waitFor();
  await shoot(p, '40-users-passkeys-reset');
  assert.equal(passkeysNamed('lost laptop'), 0, 'every passkey of the clinician is deleted');
  assert.equal(events('passkeys reset: 1 passkey(s) deleted; 1 session(s) revoked'), 1, 'recorded once');

  // The clinician's session ended with it; signed in again, they have no passkey left.
  await s.goto(`${BASE}/console/passkeys`);
  await s.getByText('Your session has ended').waitFor();
  await signIn(s, staffEmail, staffPassword, async () => (await freshTotp(secret, step)).code);
  await s.goto(`${BASE}/console/passkeys`);
  await s.getByText('You have no passkeys yet.').waitFor();
});

test('the admin sets the sign-in policy; turning it off again needs a passkey session', async () => {
  const p = admin.page;
  await nav(p, 'Sign-in policy');
  await p.getByRole('heading', { name: 'Sign-in policy', level: 1 }).waitFor();
  assert.equal(await p.getByLabel(REQUIRE, { exact: true }).isChecked(), false);
  assert.equal(await p.getByLabel(PASSWORDLESS, { exact: true }).isChecked(), false);
  await shoot(p, '40-policy');

  // Allow passwordless sign-in: saved, shown in force, recorded with old and new values.
  await p.getByLabel(PASSWORDLESS, { exact: true }).check();
  await p.getByRole('button', { name: 'Save sign-in policy' }).click();
  await p.waitForURL(/\/console\/security\?done=saved$/);
  await p.getByRole('status').filter({ hasText: 'The sign-in policy is saved.' }).waitFor();
  assert.equal(await p.getByLabel(PASSWORDLESS, { exact: true }).isChecked(), true);
  assert.equal(await p.getByLabel(REQUIRE, { exact: true }).isChecked(), false);
  const inForce = p.getByLabel('Policies in force');
  await inForce.getByText('a passkey alone signs in').waitFor();
  await shoot(p, '40-policy-saved');
  assert.equal(policy(), 'f|t');
  assert.equal(events('sign-in policy: require_phishing_resistant false → false, allow_passwordless false → true'), 1);

  // The same form, open in a second tab (the policy still off there).
  const stale = await admin.context.newPage();
  await stale.goto(`${BASE}/console/security`);
  assert.equal(await stale.getByLabel(REQUIRE, { exact: true }).isChecked(), false);

  // Turning the policy on from this TOTP session restricts the session itself.
  await p.getByLabel(REQUIRE, { exact: true }).check();
  await p.getByRole('button', { name: 'Save sign-in policy' }).click();
  await p.waitForURL(/\/console\/passkeys$/);
  await p.getByRole('heading', { name: 'Register a passkey', level: 1 }).waitFor();
  assert.equal(policy(), 't|t');
  assert.equal(events('sign-in policy: require_phishing_resistant false → true, allow_passwordless true → true'), 1);
  await shoot(p, '40-policy-on-session-restricted');

  // The other tab's form would turn it off: refused, plainly, and on record; nothing changed.
  const refusedBefore = events('passkey_enrollment_required (POST /console/security → 403)');
  const [res] = await Promise.all([
    stale.waitForResponse((r) => r.url().endsWith('/console/security') && r.request().method() === 'POST'),
    stale.getByRole('button', { name: 'Save sign-in policy' }).click(),
  ]);
  assert.equal(res.status(), 403);
  await stale.getByText('your organization requires a passkey, and this session was not opened with one').waitFor();
  await stale.getByText('Nothing was changed.').waitFor();
  await shoot(stale, '40-policy-change-refused');
  await stale.close();
  assert.equal(policy(), 't|t', 'the policy is still on');
  assert.equal(events('passkey_enrollment_required (POST /console/security → 403)'), refusedBefore + 1, 'the refusal is recorded');

  // Enrol a passkey, sign in with it: that session may turn the policy off.
  await registerPasskey(p, 'admin key', a.password);
  await signOut(p);
  await p.getByLabel('Email', { exact: true }).fill(a.email);
  await p.getByLabel('Password', { exact: true }).fill(a.password);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await p.getByRole('button', { name: 'Use a passkey' }).click();
  await p.waitForURL(/\/console\/$/);
  await nav(p, 'Sign-in policy');
  assert.equal(await p.getByLabel(REQUIRE, { exact: true }).isChecked(), true);
  assert.equal(await p.getByLabel(PASSWORDLESS, { exact: true }).isChecked(), true);
  await p.getByLabel(REQUIRE, { exact: true }).uncheck();
  await p.getByLabel(PASSWORDLESS, { exact: true }).uncheck();
  await p.getByRole('button', { name: 'Save sign-in policy' }).click();
  await p.waitForURL(/\/console\/security\?done=saved$/);
  await inForce.getByText('a code from an authenticator app is enough').waitFor();
  await shoot(p, '40-policy-off-by-passkey');
  assert.equal(policy(), 'f|f');
  assert.equal(events('sign-in policy: require_phishing_resistant true → false, allow_passwordless true → false'), 1);
});
