// The bootstrap admin's first day in the console, and the framework's guarantees: CSP on every
// page, no request to another origin, CSRF refusals, no serious accessibility violation.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { BASE, firstSignIn, freshTotp, launch, saveState, shoot, signIn } from '../lib/harness.js';

const email = process.env.CUSTOS_ADMIN_EMAIL;
const otp = process.env.CUSTOS_ADMIN_OTP;
const password = 'correct horse battery staple 42';
let b;
let admin;

before(async () => { b = await launch(); });
after(async () => {
  assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
  assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
  await b.close();
});

test('sign-in page: CSP header, labelled fields, redirect from /console/', async () => {
  const res = await b.page.goto(`${BASE}/console/`);
  assert.equal(new URL(b.page.url()).pathname, '/console/sign-in');
  const csp = res.headers()['content-security-policy'];
  assert.equal(csp, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    + "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
  await b.page.getByLabel('Email', { exact: true }).waitFor();
  await b.page.getByLabel('Password', { exact: true }).waitFor();
  await shoot(b.page, '01-sign-in');
});

test('a wrong password is refused with a message', async () => {
  await signIn(b.page, email, 'not the password at all');
  assert.equal(new URL(b.page.url()).pathname, '/console/sign-in');
  await b.page.getByRole('alert').filter({ hasText: 'not correct' }).waitFor();
});

test('first sign-in: forced password change, MFA enrolment with a QR code', async () => {
  admin = await firstSignIn(b.page, email, otp, password, '02-admin');
  await b.page.getByRole('link', { name: 'Continue to the console' }).click();
  assert.equal(new URL(b.page.url()).pathname, '/console/');
  await b.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).waitFor();
  await shoot(b.page, '03-admin-home');
  saveState({ admin: { email, password, secret: admin.secret, recoveryCodes: admin.recoveryCodes.slice(2) } });
});

test('the session cookie is HttpOnly, SameSite=Strict, Path=/console; nothing in web storage', async () => {
  const cookies = await b.context.cookies(`${BASE}/console/`);
  const s = cookies.find((c) => c.name === 'custos_console');
  assert.ok(s, 'session cookie set');
  assert.equal(s.httpOnly, true);
  assert.equal(s.sameSite, 'Strict');
  assert.equal(s.path, '/console');
  const storage = await b.page.evaluate(() => [localStorage.length, sessionStorage.length]);
  assert.deepEqual(storage, [0, 0]);
  assert.equal(await b.page.evaluate(() => document.cookie.includes('custos_console=')), false);
});

test('a POST without the CSRF token, or from another origin, is refused', async () => {
  const none = await b.page.request.post(`${BASE}/console/sign-out`, { form: {}, maxRedirects: 0 });
  assert.equal(none.status(), 403);
  const token = await b.page.evaluate(() => document.body.dataset.csrf);
  assert.ok(token.length > 20);
  const wrong = await b.page.request.post(`${BASE}/console/sign-out`, { form: { csrf: `${token}x` }, maxRedirects: 0 });
  assert.equal(wrong.status(), 403);
  const foreign = await b.page.request.post(`${BASE}/console/sign-out`, {
    form: { csrf: token }, headers: { Origin: 'https://evil.example' }, maxRedirects: 0,
  });
  assert.equal(foreign.status(), 403);
  // Each refusal of a signed-in user is a security event in the ledger (the audit wrapper).
  const sql = "SELECT count(*) FROM (SELECT reason, action::text FROM audit_inbox UNION ALL "
    + "SELECT reason, action::text FROM audit_log) e "
    + "WHERE action = 'security' AND (reason LIKE 'CSRF token % (POST /console/sign-out → 403)' "
    + "OR reason LIKE 'cross-origin request % (POST /console/sign-out → 403)')";
  const n = execFileSync('psql', [process.env.CUSTOS_DATABASE_URL, '-tAc', sql], { encoding: 'utf8' }).trim();
  assert.equal(n, '3', 'three refusals recorded');
  // Still signed in: none of them got through.
  const home = await b.page.goto(`${BASE}/console/`);
  assert.equal(home.status(), 200);
  assert.equal(new URL(b.page.url()).pathname, '/console/');
});

test('sessions page, sign-out, and sign-in again with password and TOTP', async () => {
  await b.page.getByRole('navigation', { name: 'Your account' }).getByRole('link', { name: 'Sessions' }).click();
  await b.page.getByRole('heading', { name: 'Your sessions' }).waitFor();
  await shoot(b.page, '04-sessions');
  await b.page.getByRole('button', { name: 'Sign out' }).first().click();
  assert.equal(new URL(b.page.url()).pathname, '/console/sign-in');
  const gone = await b.page.goto(`${BASE}/console/sessions`);
  assert.equal(new URL(b.page.url()).pathname, '/console/sign-in', `after sign-out: ${gone.status()}`);
  await signIn(b.page, email, password, async () => (await freshTotp(admin.secret, admin.step)).code);
  assert.equal(new URL(b.page.url()).pathname, '/console/');
  await shoot(b.page, '05-signed-in-again');
});
