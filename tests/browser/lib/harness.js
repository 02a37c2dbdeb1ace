// Shared pieces of the console's browser tests: Debian's Chromium through playwright-core,
// a TOTP computed here (RFC 6238, SHA-1, 6 digits, 30 s), axe-core run inside each page,
// a same-origin check on every request, CSP-violation capture, and screenshots.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const BASE = process.env.CUSTOS_URL;
export const SHOTS = process.env.CUSTOS_SCREENSHOTS || 'screenshots';
const STATE = process.env.CUSTOS_STATE_FILE || path.join(SHOTS, 'state.json');
if (!BASE) throw new Error('CUSTOS_URL is not set: run tests/browser/run');
const ORIGIN = new URL(BASE).origin;

/** Launches Debian's Chromium with a fresh user-data dir (one "browser profile"). */
export async function launch() {
  const dir = mkdtempSync(path.join(tmpdir(), 'custos-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 800 },
  });
  const foreign = [];
  const cspViolations = [];
  const watch = (page) => {
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.origin !== ORIGIN) foreign.push(r.url());
    });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const page = context.pages()[0] || await context.newPage();
  return {
    context, page, foreign, cspViolations,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; const out = [];
  for (const c of s.replace(/[=\s]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error('bad base32');
    value = (value << 5) | i; bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

/** The TOTP of `secretBase32` for the 30-second step `step` (default: now). */
export function totp(secretBase32, step = Math.floor(Date.now() / 30000)) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32Decode(secretBase32)).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

/** A TOTP for a step after `lastStep` (waits for the next 30-second window if needed). */
export async function freshTotp(secret, lastStep) {
  let step = Math.floor(Date.now() / 30000);
  while (lastStep !== undefined && step <= lastStep) {
    await new Promise((r) => setTimeout(r, 1000));
    step = Math.floor(Date.now() / 30000);
  }
  return { code: totp(secret, step), step };
}

/** Runs axe-core in the page (evaluated over CDP, so the page's CSP stays as it is) and fails
 *  on any serious or critical violation. */
export async function axeCheck(page, name) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe-core on ${name}: ${JSON.stringify(bad, null, 1)}`);
}

/** Screenshot of the whole page into the screenshot folder, then the accessibility check. */
export async function shoot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  await axeCheck(page, name);
}

/** State handed from one test file to the next (accounts made, their secrets). */
export function loadState() {
  return existsSync(STATE) ? JSON.parse(readFileSync(STATE, 'utf8')) : {};
}
export function saveState(patch) {
  writeFileSync(STATE, JSON.stringify({ ...loadState(), ...patch }, null, 1));
}

/** Signs in through the form: Email, Password, then Code (when `code` is a function giving it). */
export async function signIn(page, email, password, code) {
  await page.goto(`${BASE}/console/sign-in`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  if (code) {
    await page.getByLabel('Code', { exact: true }).waitFor();
    await page.getByLabel('Code', { exact: true }).fill(await code());
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }
  await page.waitForLoadState('load');
}

/** Goes through the forced password change and MFA enrolment of a new account; returns the
 *  TOTP secret, the step used and the recovery codes. */
export async function firstSignIn(page, email, oneTimePassword, newPassword, shotPrefix) {
  await signIn(page, email, oneTimePassword);
  assert.equal(new URL(page.url()).pathname, '/console/password', 'a one-time password must be changed first');
  if (shotPrefix) await shoot(page, `${shotPrefix}-password-change`);
  await page.getByLabel('Current password', { exact: true }).fill(oneTimePassword);
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.waitForURL(/\/console\/mfa$/);
  if (shotPrefix) await shoot(page, `${shotPrefix}-mfa-intro`);
  await page.getByRole('button', { name: 'Set up the authenticator app' }).click();
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  const qr = page.getByAltText('QR code for your authenticator app');
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
  if (shotPrefix) await shoot(page, `${shotPrefix}-mfa-qr`);
  const { code, step } = await freshTotp(secret);
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  const codes = await page.getByRole('list', { name: 'Recovery codes' }).locator('code').allTextContents();
  assert.equal(codes.length, 10);
  if (shotPrefix) await shoot(page, `${shotPrefix}-recovery-codes`);
  return { secret, step, recoveryCodes: codes };
}

/** One SQL statement against the test database as the superuser (test set-up and checks only). */
export function psql(sql) {
  return execFileSync('psql', [process.env.CUSTOS_DATABASE_URL, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql],
    { encoding: 'utf8' }).trim();
}

/** The path of the page's current URL. */
export const pagePath = (page) => new URL(page.url()).pathname;

/** Follows an entry of the work navigation ("Main"). */
export const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

/** Follows an entry of the user's own pages ("Your account": Sessions, Passkeys). */
export const accountNav = (page, name) =>
  page.getByRole('navigation', { name: 'Your account' }).getByRole('link', { name, exact: true }).click();

/** A virtual platform authenticator (resident keys, user verification) for `b`'s page, through
 * the DevTools WebAuthn domain; answers a function listing the credentials it holds. */
export async function authenticator(b) {
  const cdp = await b.context.newCDPSession(b.page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
}

/** Registers a passkey on the Passkeys page (the password again) and waits for the confirmation. */
export async function registerPasskey(page, label, password) {
  await page.getByLabel('Name', { exact: true }).fill(label);
  await page.getByLabel('Current password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Register a passkey' }).click();
  await page.waitForURL(/\/console\/passkeys\?done=registered$/);
  await page.getByRole('status').filter({ hasText: 'Passkey registered.' }).waitFor();
}

/** Signs out with the header's button and waits for the sign-in page. */
export async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.waitForURL(/\/console\/sign-in$/);
}
