// The console's in-browser verifier (assets/console/js/tlog-verify.js) under Node's WebCrypto,
// against vectors the Rust ledger code wrote (tests/ledger/browser_vectors.rs). No dependencies:
//   node --test tests/browser/verifier.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  b64decode, b64encode, canonicalEventBytes, leafHash, parseVerifierKey, verifyCheckpoint,
  verifyInclusion, verifyConsistency, verifyEvent, verifyCheckpointPair,
} from '../../assets/console/js/tlog-verify.js';

const V = JSON.parse(readFileSync(new URL('./fixtures/tlog-vectors.json', import.meta.url), 'utf8'));
const td = new TextDecoder();

const proofFor = (i) => V.inclusion[i];

test('canonical bytes of every listed event equal the Rust canonical bytes', () => {
  assert.equal(V.events.length, 7);
  for (const [i, ev] of V.events.entries()) {
    assert.equal(td.decode(canonicalEventBytes(ev)), V.canonical[i], `event ${i} (format ${ev.format_version})`);
  }
  assert.ok(V.events.some((e) => e.format_version === 1), 'a version-1 entry is covered');
});

test('leaf hashes recomputed from the events equal the stored leaves', async () => {
  for (const [i, ev] of V.events.entries()) {
    assert.equal(b64encode(await leafHash(canonicalEventBytes(ev))), V.leaf_hashes[i]);
    assert.equal(ev.leaf_hash, V.leaf_hashes[i]);
  }
});

test('the pinned key parses, and its key id is checked', async () => {
  const k = await parseVerifierKey(V.vkey);
  assert.equal(k.name, V.origin);
  assert.equal(k.keyIdHex, V.vkey.split('+')[1]);
  const [name, id, key] = V.vkey.split('+');
  const wrongId = (parseInt(id, 16) ^ 1).toString(16).padStart(8, '0');
  await assert.rejects(parseVerifierKey(`${name}+${wrongId}+${key}`), { step: 'key' });
  await assert.rejects(parseVerifierKey('not a key'), { step: 'key' });
});

test('checkpoints verify under the ledger name derived from the pinned key', async () => {
  const k = await parseVerifierKey(V.vkey);
  const cp = await verifyCheckpoint(V.checkpoint, k, V.ledger_origin);
  assert.equal(cp.size, 7n);
  assert.equal(b64encode(cp.root), V.root);
  assert.equal(cp.keyName, V.ledger_origin);
  assert.equal(cp.keyIdHex, V.ledger_vkey.split('+')[1]);
  // The same note is refused for another ledger's origin.
  await assert.rejects(verifyCheckpoint(V.checkpoint, k, `${V.origin}/00000000-0000-0000-0000-000000000000`), {
    step: 'signature',
  });
});

test('a checkpoint signed by another key, or altered, is refused', async () => {
  const k = await parseVerifierKey(V.vkey);
  await assert.rejects(verifyCheckpoint(V.stranger_checkpoint, k, V.ledger_origin), { step: 'signature' });
  const altered = V.checkpoint.replace('\n7\n', '\n6\n');
  assert.notEqual(altered, V.checkpoint);
  await assert.rejects(verifyCheckpoint(altered, k, V.ledger_origin), {
    step: 'signature',
    message: /invalid signature/,
  });
  const stranger = await parseVerifierKey(V.stranger_vkey);
  await assert.rejects(verifyCheckpoint(V.checkpoint, stranger, V.ledger_origin), { step: 'signature' });
});

test('every inclusion proof verifies; a wrong index or a flipped path hash does not', async () => {
  const root = b64decode(V.root);
  for (let i = 0; i < V.events.length; i++) {
    const leaf = b64decode(V.leaf_hashes[i]);
    await verifyInclusion(leaf, i, 7, proofFor(i).proof, root);
    if (proofFor(i).proof.length) {
      const bad = proofFor(i).proof.slice();
      const h = b64decode(bad[0]);
      h[0] ^= 1;
      bad[0] = b64encode(h);
      await assert.rejects(verifyInclusion(leaf, i, 7, bad, root), { step: 'inclusion', index: i });
    }
  }
  await assert.rejects(verifyInclusion(b64decode(V.leaf_hashes[2]), 3, 7, proofFor(3).proof, root), {
    step: 'inclusion',
  });
  await assert.rejects(verifyInclusion(b64decode(V.leaf_hashes[0]), 7, 7, [], root), { step: 'inclusion' });
});

test('verifyEvent: every event checks out and says what it checked', async () => {
  for (const [i, ev] of V.events.entries()) {
    const r = await verifyEvent({ event: ev, checkpoint: V.checkpoint, proof: proofFor(i), pinnedKey: V.vkey, origin: V.origin });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.checks.length, 4);
    assert.match(r.checks[0], new RegExp(`key ${V.ledger_origin.replace(/[./]/g, '\\$&')}\\+[0-9a-f]{8} .*size 7`));
    assert.match(r.checks[1], new RegExp(`leaf hash at index ${i} recomputed`));
    assert.match(r.checks[2], new RegExp(`path of length ${proofFor(i).proof.length}`));
    assert.match(r.checks[3], /root equality/);
  }
});

test('verifyEvent: a tampered entry fails at its index, after the signature checked out', async () => {
  const { index, event } = V.tampered;
  const r = await verifyEvent({ event, checkpoint: V.checkpoint, proof: proofFor(index), pinnedKey: V.vkey, origin: V.origin });
  assert.equal(r.ok, false);
  assert.equal(r.index, index);
  assert.equal(r.step, 'inclusion');
  assert.match(r.error, new RegExp(`event at index ${index} is not the one the signed checkpoint commits to`));
  assert.equal(r.checks.length, 3, 'signature, leaf and path were checked before the root comparison');
  // The server's own leaf hash still matches the tree: only recomputing it catches the change.
  assert.equal(event.leaf_hash, V.leaf_hashes[index]);
});

test('verifyEvent: the wrong pinned key or a proof for another size fails with a reason', async () => {
  const wrongKey = await verifyEvent({ event: V.events[0], checkpoint: V.checkpoint, proof: proofFor(0), pinnedKey: V.stranger_vkey, origin: V.origin });
  assert.equal(wrongKey.ok, false);
  assert.equal(wrongKey.step, 'signature');
  const otherSize = { ...proofFor(0), tree_size: 4 };
  const r = await verifyEvent({ event: V.events[0], checkpoint: V.checkpoint, proof: otherSize, pinnedKey: V.vkey, origin: V.origin });
  assert.equal(r.ok, false);
  assert.equal(r.step, 'proof');
});

test('consistency between the two checkpoints verifies; a swapped proof does not', async () => {
  const c = V.consistency;
  await verifyConsistency(c.from, c.to, b64decode(V.old_root), b64decode(V.root), c.proof);
  const ok = await verifyCheckpointPair({ older: V.old_checkpoint, newer: V.checkpoint, consistency: c, pinnedKey: V.vkey, expectedOrigin: V.ledger_origin });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  assert.match(ok.checks[1], /size 4 is a prefix of the tree of size 7/);
  await assert.rejects(verifyConsistency(c.from, c.to, b64decode(V.root), b64decode(V.root), c.proof), { step: 'consistency' });
  const reversed = { ...c, proof: c.proof.slice().reverse() };
  const bad = await verifyCheckpointPair({ older: V.old_checkpoint, newer: V.checkpoint, consistency: reversed, pinnedKey: V.vkey, expectedOrigin: V.ledger_origin });
  assert.equal(bad.ok, c.proof.length < 2, 'a reordered path must fail');
  await assert.rejects(verifyConsistency(7, 4, b64decode(V.root), b64decode(V.old_root), []), { step: 'consistency' });
});
