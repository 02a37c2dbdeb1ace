// The same verifier in Debian's headless Chromium (its WebCrypto, its Ed25519), no npm
// dependency: a page imports assets/console/js/tlog-verify.js, runs the checks over the Rust
// vectors (tests/ledger/browser_vectors.rs) and writes the outcome into the DOM, which
// `chromium --dump-dom` prints.
//   node --test tests/browser/verifier-chromium.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const module = pathToFileURL(fileURLToPath(new URL('../../assets/console/js/tlog-verify.js', import.meta.url))).href;
const vectors = readFileSync(new URL('./fixtures/tlog-vectors.json', import.meta.url), 'utf8');

const page = `<!doctype html><meta charset="utf-8"><title>verifier</title>
<script type="application/json" id="v">${vectors.replace(/</g, '\\u003c')}</script>
<pre id="out">pending</pre>
<script type="module">
import { verifyEvent, verifyCheckpointPair } from ${JSON.stringify(module)};
const V = JSON.parse(document.getElementById('v').textContent);
const res = { events: [], ua: navigator.userAgent };
try {
  for (const [i, event] of V.events.entries()) {
    res.events.push(await verifyEvent({ event, checkpoint: V.checkpoint, proof: V.inclusion[i], pinnedKey: V.vkey, origin: V.origin }));
  }
  const t = V.tampered;
  res.tampered = await verifyEvent({ event: t.event, checkpoint: V.checkpoint, proof: V.inclusion[t.index], pinnedKey: V.vkey, origin: V.origin });
  res.pair = await verifyCheckpointPair({ older: V.old_checkpoint, newer: V.checkpoint, consistency: V.consistency, pinnedKey: V.vkey, expectedOrigin: V.ledger_origin });
  res.stranger = await verifyEvent({ event: V.events[0], checkpoint: V.stranger_checkpoint, proof: V.inclusion[0], pinnedKey: V.vkey, origin: V.origin });
} catch (e) { res.exception = String(e && e.stack || e); }
document.getElementById('out').textContent = JSON.stringify(res);
</script>`;

test('Chromium verifies the Rust vectors and catches the tampered entry at its index', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-verifier-'));
  try {
    writeFileSync(join(dir, 'page.html'), page);
    const dom = execFileSync(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${join(dir, 'profile')}`,
      '--allow-file-access-from-files', '--virtual-time-budget=10000', '--dump-dom',
      pathToFileURL(join(dir, 'page.html')).href,
    ], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
    const m = dom.match(/<pre id="out">([^<]*)<\/pre>/);
    assert.ok(m, 'the page wrote its result');
    const text = m[1].replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    assert.notEqual(text, 'pending', 'the module ran');
    const res = JSON.parse(text);
    assert.equal(res.exception, undefined, res.exception);
    assert.equal(res.events.length, 7);
    for (const r of res.events) assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(res.tampered.ok, false);
    assert.equal(res.tampered.index, JSON.parse(vectors).tampered.index);
    assert.equal(res.tampered.step, 'inclusion');
    assert.equal(res.pair.ok, true, JSON.stringify(res.pair));
    assert.equal(res.stranger.ok, false);
    assert.equal(res.stranger.step, 'signature');
    assert.match(res.ua, /Chrome\//);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
