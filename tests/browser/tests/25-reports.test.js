// The pages of the second console round: the printable patient access report (found by MRN,
// the look-up and the report both in the ledger), the event browser's MRN filter, the
// offline bundle downloaded from the exports page and checked by `custos verify --bundle`,
// rewrap progress on the health page, break-glass grants with their review state, and the
// navigation each role gets.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { BASE, freshTotp, launch, loadState, nav, psql, saveState, shoot, signIn } from '../lib/harness.js';

const MRN = 'WT-2026-0042';
let admin; // browser profile 1
let auditor; // browser profile 2
let patientId;
let auditorId;
let adminToken;


async function api(method, path, body, token) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const navLinks = async (page) => (await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents())
  .map((t) => t.trim());

before(async () => {
  admin = await launch();
  auditor = await launch();
  const state = loadState();
  assert.ok(state.admin && state.auditor, '01-admin and 02-admin-pages ran first');
  const a = state.admin;
  const [consoleCode, apiCode] = [a.recoveryCodes.shift(), a.recoveryCodes.shift()];
  saveState({ admin: a });
  // A patient with an MRN, created by the admin through the API.
  const login = await api('POST', '/v1/auth/login', { email: a.email, password: a.password });
  const tokens = await api('POST', '/v1/auth/mfa/verify', { mfa_token: login.mfa_token, code: apiCode });
  const p = await api('POST', '/v1/patients', { mrn: MRN, given_name: 'Walter', family_name: 'Through', birth_date: '1970-04-01' },
    tokens.access_token);
  patientId = p.id;
  adminToken = tokens.access_token;
  await signIn(admin.page, a.email, a.password, async () => consoleCode);
  assert.equal(new URL(admin.page.url()).pathname, '/console/');
  // Recovery codes: a TOTP step another file used may not be replayed.
  const u = state.auditor;
  const auditorCode = u.recoveryCodes.shift();
  saveState({ auditor: u });
  await signIn(auditor.page, u.email, u.password, async () => auditorCode);
  assert.equal(new URL(auditor.page.url()).pathname, '/console/');
  auditorId = psql(`SELECT id FROM users WHERE role = 'auditor' ORDER BY created_at LIMIT 1`);
});

after(async () => {
  for (const b of [admin, auditor]) {
    assert.deepEqual(b.foreign, [], 'no request may leave for another origin');
    assert.deepEqual(b.cspViolations, [], 'no page may break its own CSP');
    await b.close();
  }
});

test('each role sees its pages', async () => {
  assert.deepEqual(await navLinks(admin.page),
    ['Events', 'Checkpoints', 'Access report', 'Exports', 'Break-glass', 'Users', 'Sign-in policy', 'Care teams',
      'Health']);
  assert.deepEqual(await navLinks(auditor.page),
    ['Events', 'Checkpoints', 'Access report', 'Exports', 'Review', 'Break-glass']);
  // Every staff member's own pages sit apart, next to "Sign out".
  for (const p of [admin.page, auditor.page]) {
    assert.deepEqual((await p.getByRole('navigation', { name: 'Your account' }).getByRole('link').allTextContents())
      .map((t) => t.trim()), ['Sessions', 'Passkeys']);
  }
  // Admins read their organization's ledger (DESIGN.md): the event browser answers them.
  const res = await admin.page.goto(`${BASE}/console/events`);
  assert.equal(res.status(), 200);
});

test('the printable access report, found by MRN', async () => {
  const p = auditor.page;
  await nav(p, 'Access report');
  await p.getByRole('heading', { name: 'Patient access report' }).waitFor();
  await p.getByLabel('Medical record number (MRN)').fill(MRN.toLowerCase());
  await p.getByRole('button', { name: 'Show report' }).click();
  await p.getByRole('heading', { name: 'Accounting of disclosures' }).waitFor();
  assert.equal((await p.locator('dl.facts dd.id').first().textContent()).trim(), patientId);
  const rows = p.locator('table.report-table tbody tr');
  assert.ok((await rows.count()) >= 1, 'the admin created the record');
  const actions = await p.locator('table.report-table tbody tr td:nth-child(5)').allTextContents();
  assert.ok(actions.map((t) => t.trim()).includes('create'), actions.join(','));
  await shoot(p, '26-access-report');
  // Printed: no navigation, no form, no button; the table and its facts stay.
  await p.emulateMedia({ media: 'print' });
  const hidden = await p.evaluate(() => ['header.top', 'footer.bottom', 'form', 'button[data-print]', '.skip']
    .map((s) => [...document.querySelectorAll(s)].every((e) => getComputedStyle(e).display === 'none')));
  assert.deepEqual(hidden, [true, true, true, true, true]);
  assert.notEqual(await p.locator('table.report-table').evaluate((t) => getComputedStyle(t).display), 'none');
  await shoot(p, '27-access-report-print');
  await p.emulateMedia({ media: 'screen' });
  // The look-up and the report are both in the ledger, naming the patient.
  const recorded = psql(`SELECT string_agg(resource_type || ':' || coalesce(patient_id::text, '-'), ',' ORDER BY resource_type)
    FROM (SELECT actor_id, resource_type, patient_id FROM audit_inbox UNION ALL SELECT actor_id, resource_type, patient_id FROM audit_log) e
    WHERE actor_id = '${auditorId}' AND resource_type IN ('patient_lookup', 'access_report')`);
  assert.equal(recorded, `access_report:${patientId},patient_lookup:${patientId}`);
  // An MRN nobody has: said plainly, and the look-up recorded too.
  await p.getByLabel('Medical record number (MRN)').fill('NO-SUCH-MRN-1');
  await p.getByRole('button', { name: 'Show report' }).click();
  await p.getByRole('status').filter({ hasText: 'No patient with this MRN' }).waitFor();
  const misses = psql(`SELECT count(*) FROM (SELECT actor_id, reason FROM audit_inbox UNION ALL SELECT actor_id, reason FROM audit_log) e
    WHERE actor_id = '${auditorId}' AND reason = 'patient by MRN: no match'`);
  assert.equal(misses, '1');
});

test('the event browser filters by a patient\'s MRN', async () => {
  const p = auditor.page;
  await nav(p, 'Events');
  await p.getByLabel('Patient MRN').fill(MRN);
  await p.getByRole('button', { name: 'Filter' }).click();
  await p.waitForURL(/mrn=/);
  // The sequencer moves the inbox into the ledger within a second or two.
  for (let i = 0; i < 20 && (await p.locator('table.events tbody tr').count()) === 0; i++) {
    await p.waitForTimeout(500);
    await p.reload();
  }
  const patients = await p.locator('table.events tbody tr td:nth-child(7)').allTextContents();
  assert.ok(patients.length >= 1, 'events about the patient');
  assert.ok(patients.every((t) => t.trim() === patientId), patients.join(','));
  await shoot(p, '28-events-by-mrn');
});

test('the offline bundle downloads from the exports page and `custos verify --bundle` accepts it', async () => {
  const p = auditor.page;
  await nav(p, 'Exports');
  const [download] = await Promise.all([p.waitForEvent('download'),
    p.getByRole('link', { name: 'Offline verification bundle' }).click()]);
  const file = await download.path();
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], 'custos-ledger-bundle 1');
  assert.match(lines[1], /^ledger [0-9a-f-]{36}$/);
  const events = lines.filter((l) => l.startsWith('event ')).map((l) => JSON.parse(l.slice(6)));
  assert.ok(events.length > 0 && lines.some((l) => l.startsWith('checkpoint ')));
  assert.equal(lines.at(-1), `end ${events.length}`);
  // Against the key the organization publishes, not the bundle's own.
  const keys = await (await fetch(`${BASE}/v1/audit/keys`)).json();
  const out = execFileSync(process.env.CUSTOS_BIN, ['verify', '--bundle', file, '--key', keys.keys[0]], { encoding: 'utf8' });
  assert.match(out, new RegExp(`^ledger [0-9a-f-]{36}: ${events.length} entries`, 'm'), out);
  assert.match(out, /^ok$/m, out);
  const exported = psql(`SELECT count(*) FROM (SELECT actor_id, action::text, resource_ids FROM audit_inbox UNION ALL
    SELECT actor_id, action::text, resource_ids FROM audit_log) e
    WHERE actor_id = '${auditorId}' AND action = 'export' AND 'bundle' = ANY(resource_ids)`);
  assert.equal(exported, '1', 'the download is recorded as an export');
});

/** A clinician account made through the API, through its first sign-in; returns a token. */
async function clinicianToken() {
  const created = await api('POST', '/v1/admin/users',
    { email: 'cleo.clinician@browser.example', role: 'clinician', display_name: 'Cleo Clinician' }, adminToken);
  const email = 'cleo.clinician@browser.example';
  const password = 'clinician passphrase for the ward 5';
  const first = await api('POST', '/v1/auth/login', { email, password: created.one_time_password });
  const res = await fetch(`${BASE}/v1/me/password`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${first.access_token}` },
    body: JSON.stringify({ current_password: created.one_time_password, new_password: password }),
  });
  assert.equal(res.status, 204);
  const again = await api('POST', '/v1/auth/login', { email, password });
  const enrol = await api('POST', '/v1/me/mfa/enroll', null, again.access_token);
  const { code } = await freshTotp(enrol.secret_base32);
  const { recovery_codes: codes } = await api('POST', '/v1/me/mfa/confirm', { code }, again.access_token);
  const login = await api('POST', '/v1/auth/login', { email, password });
  const tokens = await api('POST', '/v1/auth/mfa/verify', { mfa_token: login.mfa_token, code: codes[0] });
  return tokens.access_token;
}

test('a break-glass grant is "not reviewed" until its review-queue alert is closed', async () => {
  const token = await clinicianToken();
  const grant = await api('POST', `/v1/patients/${patientId}/break-glass`,
    { reason: 'unconscious in the emergency department, allergies needed' }, token);
  const row = (b) => b.page.locator(`tr[data-grant="${grant.id}"] td[data-review]`);
  await nav(admin.page, 'Break-glass');
  assert.match(await row(admin).textContent(), /not reviewed/);
  // The privacy monitor (`custos monitor`, run here once the sequencer has the entry).
  let alert = '';
  for (let i = 0; i < 20 && !alert; i++) {
    await new Promise((r) => setTimeout(r, 500));
    execFileSync(process.env.CUSTOS_BIN, ['monitor', '--once'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    alert = psql(`SELECT id FROM monitor_alerts WHERE detector = 'break_glass' AND patient_id = '${patientId}'`);
  }
  assert.ok(alert, 'the grant raised a break_glass alert');
  // The patient's access report now has the break-glass line, with its (sealed) reason opened.
  await nav(auditor.page, 'Access report');
  await auditor.page.getByLabel('Medical record number (MRN)').fill(MRN);
  await auditor.page.getByRole('button', { name: 'Show report' }).click();
  const bgLine = auditor.page.locator('table.report-table tbody tr', { hasText: 'break-glass:' });
  assert.match(await bgLine.first().textContent(), /unconscious in the emergency department, allergies needed/);
  await admin.page.reload();
  assert.match(await row(admin).textContent(), /not reviewed/);
  assert.equal(await admin.page.locator(`tr[data-grant="${grant.id}"] a`).count(), 0, 'no review link for admins');
  await shoot(admin.page, '30-break-glass-admin-open');
  // The auditor follows the grant to its alert and closes it.
  await nav(auditor.page, 'Break-glass');
  await auditor.page.locator(`tr[data-grant="${grant.id}"]`).getByRole('link', { name: 'alert' }).click();
  await auditor.page.waitForURL(new RegExp(`/console/review/${alert}$`));
  await auditor.page.getByLabel('Outcome').selectOption('appropriate');
  await auditor.page.getByRole('button', { name: 'Record decision' }).click();
  await nav(auditor.page, 'Break-glass');
  assert.match(await row(auditor).textContent(), /reviewed: appropriate/);
  await shoot(auditor.page, '31-break-glass-reviewed');
  await admin.page.reload();
  assert.match(await row(admin).textContent(), /reviewed: appropriate/);
});

test('health shows rewrap progress next to the ledger\'s state', async () => {
  const p = admin.page;
  await nav(p, 'Health');
  const line = p.locator('[data-rewrap-pending]');
  await line.waitFor();
  assert.equal(await line.getAttribute('data-rewrap-pending'), '0', 'one data key: nothing to rewrap');
  const current = Number(await p.locator('td[data-key-version]').first().getAttribute('data-key-version'));
  assert.ok(Number(await p.locator(`td[data-key-version="${current}"]`).textContent()) > 0, 'sealed values counted');
  assert.ok((await p.locator('dl.facts').textContent()).includes('inbox depth'));
  await shoot(p, '29-health-rewrap');
});
