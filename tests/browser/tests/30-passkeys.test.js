// Passkeys in the console, for real: Chromium's virtual authenticator (the DevTools WebAuthn
// domain, through playwright-core) answers navigator.credentials.create/get, with user
// verification. The admin signs in naming the organization, registers a passkey after
// re-entering the password, signs out, signs in with password + passkey, then passwordless
// (refused until the organization allows it). With the organization's "phishing-resistant
// factor" policy on, a new TOTP-only clinician can do nothing but enrol a passkey, then signs in
// with it. The policies are set with psql (a fixture: turning the policy off again needs a
// passkey session, which a script cannot open); the API tests cover setting them through
// /v1/admin/auth-policy.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { accountNav, authenticator, BASE, firstSignIn, launch, loadState, nav, pagePath as path, psql, registerPasskey, saveState, shoot, signOut } from '../lib/harness.js';

const ORG = 'Browser Test Clinic';
const clinicianEmail = 'passkey-clinician@browser.example';
const clinicianPassword = 'phishing resistant all the way 9';

const setPolicy = (requirePhishingResistant, allowPasswordless) => psql(
  `UPDATE organizations SET require_phishing_resistant = ${requirePhishingResistant}, `
  + `allow_passwordless = ${allowPasswordless} WHERE name = '${ORG}'`,
);
/** Events (inbox or log) of this test's organization whose reason matches `like`. */
const events = (like) => Number(psql(
  "SELECT count(*) FROM (SELECT reason FROM audit_inbox UNION ALL SELECT reason FROM audit_log) e "
  + `WHERE reason LIKE '${like}'`,
));

let admin; // browser profile 1, with its own virtual authenticator
let staff; // browser profile 2, with another
let a; // the admin's account (state of 01-admin.test.js)



async function passwordStep(page, email, password, organization) {
  await page.goto(`${BASE}/console/sign-in`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  if (organization !== undefined) await page.getByLabel('Organization', { exact: true }).fill(organization);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState('load');
}

/** Registers a passkey on the passkeys page (name + password again). */


before(async () => {
  a = loadState().admin;
  assert.ok(a, '01-admin.test.js runs first');
  setPolicy(false, false);
  admin = await launch();
  admin.credentials = await authenticator(admin);
  staff = await launch();
  staff.credentials = await authenticator(staff);
});

after(async () => {
  setPolicy(false, false);
  for (const b of [admin, staff]) {
    if (!b) continue;
    assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
    assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
    await b.close();
  }
});

test('sign-in names the organization when asked; a wrong one is refused like a wrong password', async () => {
  const p = admin.page;
  await p.goto(`${BASE}/console/sign-in`);
  await p.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
  await shoot(p, '30-sign-in-passkey');
  await passwordStep(p, a.email, a.password, 'No Such Clinic');
  assert.equal(path(p), '/console/sign-in');
  await p.getByRole('alert').filter({ hasText: 'not correct' }).waitFor();
  await passwordStep(p, a.email, a.password, ORG);
  assert.equal(path(p), '/console/sign-in/code');
  await p.getByRole('button', { name: 'Use a passkey' }).waitFor();
  await shoot(p, '31-sign-in-code-or-passkey');
  const code = a.recoveryCodes.shift();
  saveState({ admin: a });
  await p.getByLabel('Code', { exact: true }).fill(code);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await p.waitForURL(/\/console\/$/);
});

test('the admin registers a passkey after re-entering the password; it is listed with its flags', async () => {
  const p = admin.page;
  await accountNav(p, 'Passkeys');
  await p.getByRole('heading', { name: 'Your passkeys', level: 1 }).waitFor();
  await p.getByText('You have no passkeys yet.').waitFor();
  await shoot(p, '32-passkeys-empty');

  await p.getByLabel('Name', { exact: true }).fill('virtual key');
  await p.getByLabel('Current password', { exact: true }).fill('not my password');
  await p.getByRole('button', { name: 'Register a passkey' }).click();
  await p.getByRole('alert').filter({ hasText: 'The password is not correct.' }).waitFor();
  assert.equal((await admin.credentials()).length, 0, 'no credential made after a wrong password');

  await registerPasskey(p, 'virtual key', a.password);
  const creds = await admin.credentials();
  assert.equal(creds.length, 1, 'the virtual authenticator holds the new credential');
  assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential (for passwordless)');
  const row = p.getByRole('row').filter({ hasText: 'virtual key' });
  await row.waitFor();
  const cells = await row.getByRole('cell').allTextContents();
  assert.equal(cells[2].trim(), 'never', 'not used yet');
  assert.match(cells[3], /This device only|Can be synced|Synced/);
  await shoot(p, '33-passkey-registered');
  assert.equal(events('passkey registration refused: wrong password'), 1);
  assert.equal(events('passkey registered'), 1);
});

test('sign out, then password + passkey as the second factor', async () => {
  const p = admin.page;
  await signOut(p);
  await passwordStep(p, a.email, a.password);
  assert.equal(path(p), '/console/sign-in/code');
  await p.getByRole('button', { name: 'Use a passkey' }).click();
  await p.waitForURL(/\/console\/$/);
  await accountNav(p, 'Passkeys');
  const cells = await p.getByRole('row').filter({ hasText: 'virtual key' }).getByRole('cell').allTextContents();
  assert.match(cells[2], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/, 'last use recorded');
  assert.equal(events('password and passkey'), 1, 'the sign-in is recorded as password and passkey');
  const pr = psql("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
    + `WHERE u.role = 'admin' AND s.phishing_resistant AND s.revoked_at IS NULL`);
  assert.equal(pr, '1', 'the live session is phishing-resistant');
});

test('passwordless: refused until the organization allows it, then a passkey alone signs in', async () => {
  const p = admin.page;
  await signOut(p);
  await p.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await p.getByRole('alert').filter({ hasText: 'does not allow sign-in with a passkey alone' }).waitFor();
  assert.equal(path(p), '/console/sign-in');
  await shoot(p, '34-passwordless-not-allowed');
  assert.equal(events('passwordless sign-in refused: not allowed by the organization%'), 1);

  setPolicy(false, true);
  await p.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await p.waitForURL(/\/console\/$/);
  await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).waitFor();
  assert.equal(events('passwordless passkey'), 1);
});

test('with the policy on, a TOTP-only clinician can do nothing but enrol a passkey', async () => {
  // The admin (a passkey session: the policy does not restrict it) creates the clinician.
  await nav(admin.page, 'Users');
  await admin.page.getByLabel('Email', { exact: true }).fill(clinicianEmail);
  await admin.page.getByLabel('Display name', { exact: true }).fill('Pat Passkey');
  await admin.page.getByLabel('Role', { exact: true }).selectOption('clinician');
  await admin.page.getByRole('button', { name: 'Create account' }).click();
  const otp = (await admin.page.locator('#one-time-password').textContent()).trim();
  setPolicy(true, true);
  const adminHome = await admin.page.goto(`${BASE}/console/users`);
  assert.equal(adminHome.status(), 200, 'the admin signed in with a passkey keeps a full session');

  const p = staff.page;
  await firstSignIn(p, clinicianEmail, otp, clinicianPassword);
  await p.goto(`${BASE}/console/`);
  assert.equal(path(p), '/console/passkeys', 'a TOTP-only session is sent to the passkey enrolment');
  await p.getByRole('heading', { name: 'Register a passkey', level: 1 }).waitFor();
  assert.equal(await p.getByRole('navigation', { name: 'Main' }).count(), 0, 'no navigation');
  await shoot(p, '35-passkey-required');
  for (const page of ['/console/sessions', '/console/users', '/console/events']) {
    await p.goto(`${BASE}${page}`);
    assert.equal(path(p), '/console/passkeys', `${page} is not served`);
  }
  const csrf = await p.evaluate(() => document.body.dataset.csrf);
  const revoke = await p.request.post(`${BASE}/console/sessions/${randomUUID()}/revoke`, { form: { csrf }, maxRedirects: 0 });
  assert.equal(revoke.status(), 403, 'a form of the full console is refused');
  assert.ok(events('passkey_enrollment_required (POST /console/sessions/{id}/revoke → 403)') >= 1, 'and recorded');

  await registerPasskey(p, 'clinic laptop', clinicianPassword);
  await p.getByRole('status').filter({ hasText: 'sign in again with your password' }).waitFor();
  await p.getByRole('button', { name: 'Sign out and sign in with the passkey' }).waitFor();
  assert.equal(await p.getByLabel('Current password', { exact: true }).count(), 0, 'the form is done');
  await shoot(p, '36-passkey-enrolled-restricted');
  await p.goto(`${BASE}/console/sessions`);
  assert.equal(path(p), '/console/passkeys', 'enrolling does not lift the restriction of this session');

  await signOut(p);
  await passwordStep(p, clinicianEmail, clinicianPassword);
  await p.getByRole('button', { name: 'Use a passkey' }).click();
  await p.waitForURL(/\/console\/$/);
  await accountNav(p, 'Sessions');
  await p.getByRole('heading', { name: 'Your sessions' }).waitFor();
  await shoot(p, '37-clinician-full-session');
});
