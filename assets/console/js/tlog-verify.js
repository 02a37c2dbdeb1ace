// Custos in-browser ledger verifier: checks a signed checkpoint, an event's inclusion proof and
// the consistency of two checkpoints with nothing but WebCrypto (SHA-256, Ed25519), against a
// verifier key the auditor pinned. It trusts nothing the server says about hashes: the leaf
// hash is recomputed from the event's fields, the root from the proof, and the root is only
// believed when a pinned key signed it.
//
// Formats (the Rust code is the reference; tests/browser/verifier.test.mjs checks this module
// against vectors it wrote, tests/ledger/browser_vectors.rs):
// - key: `<name>+<hex8 key id>+<base64(0x01 ‖ 32-byte Ed25519 key)>` (c2sp.org/signed-note),
//   key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0..4] big-endian (src/audit/checkpoint.rs);
// - checkpoint note: `<origin>\n<size>\n<base64 root>\n` + `\n` + `— <name> <base64(id ‖ sig)>\n`…;
//   a ledger's origin is `<installation origin>/<ledger id>`, and its notes are signed under
//   that name with the installation's key (src/audit/signing.rs: `ledger_verifiers`);
// - leaf: SHA-256(0x00 ‖ JCS(event)) (RFC 9162, RFC 8785; src/audit/canonical.rs);
// - proofs: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) (src/audit/merkle.rs).
//
// Every function either returns what it established or throws a VerifyError naming the step
// that failed (and the ledger index, when one is involved).

const te = new TextEncoder();

/** A failed check: `step` is a stable name, `index` the ledger index when one applies. */
export class VerifyError extends Error {
  constructor(step, message, index) {
    super(message);
    this.name = 'VerifyError';
    this.step = step;
    if (index !== undefined) this.index = index;
  }
}

export function b64decode(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw new VerifyError('base64', 'not standard base64');
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** SHA-256(0x00 ‖ data). */
export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

// ---------------------------------------------------------------- keys and signed notes

function checkKeyName(name) {
  // Non-empty, no Unicode space, no '+', no control character below U+0020.
  return name.length > 0 && !/[\s+\u0000-\u001f]/u.test(name);
}

async function keyIdOf(name, rawKey) {
  const d = await sha256(concat(te.encode(name), Uint8Array.of(0x0a, 0x01), rawKey));
  return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
}

function keyIdHex(id) {
  return id.toString(16).padStart(8, '0');
}

/**
 * Parses a verifier key `name+hex8+base64(0x01 ‖ key)` and checks its key id.
 * Returns `{ name, keyId, keyIdHex, raw }`.
 */
export async function parseVerifierKey(vkey) {
  const text = String(vkey).trim();
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new VerifyError('key', 'expected name+keyid+key');
  const name = text.slice(0, first);
  const idHex = text.slice(first + 1, second);
  if (!checkKeyName(name)) throw new VerifyError('key', 'invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new VerifyError('key', 'key id must be 8 hex digits');
  let raw;
  try {
    raw = b64decode(text.slice(second + 1));
  } catch {
    throw new VerifyError('key', 'key is not standard base64');
  }
  if (raw.length !== 33 || raw[0] !== 0x01) throw new VerifyError('key', 'not an Ed25519 key (0x01 ‖ 32 bytes)');
  const key = raw.slice(1);
  const keyId = await keyIdOf(name, key);
  if (keyId !== parseInt(idHex, 16)) throw new VerifyError('key', 'key id does not match the key');
  return { name, keyId, keyIdHex: keyIdHex(keyId), raw: key };
}

/** The same key under another name (its key id changes with the name). */
async function renamed(key, name) {
  return { name, keyId: await keyIdOf(name, key.raw), keyIdHex: '', raw: key.raw };
}

/** Splits a signed note into its text (with the final newline) and signature lines. */
export function parseSignedNote(note) {
  if (typeof note !== 'string') throw new VerifyError('note', 'note must be text');
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new VerifyError('note', 'control character in note');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new VerifyError('note', 'no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const sigs = note.slice(split + 2);
  if (!sigs.endsWith('\n')) throw new VerifyError('note', 'signatures must end with a newline');
  const signatures = [];
  for (const line of sigs.slice(0, -1).split('\n')) {
    if (signatures.length === 100) throw new VerifyError('note', 'too many signatures');
    if (!line.startsWith('\u2014 ')) throw new VerifyError('note', 'signature line must start with an em dash');
    const rest = line.slice(2);
    const sp = rest.indexOf(' ');
    if (sp < 0) throw new VerifyError('note', 'no signature');
    const name = rest.slice(0, sp);
    if (!checkKeyName(name)) throw new VerifyError('note', 'invalid key name');
    let raw;
    try {
      raw = b64decode(rest.slice(sp + 1));
    } catch {
      throw new VerifyError('note', 'signature is not standard base64');
    }
    if (raw.length <= 4) throw new VerifyError('note', 'signature too short');
    const keyId = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
    signatures.push({ name, keyId, signature: raw.slice(4) });
  }
  return { text, signatures };
}

/** Strict checkpoint body: origin, decimal size without leading zeros, base64 32-byte root. */
export function parseCheckpointBody(text) {
  if (!text.endsWith('\n')) throw new VerifyError('checkpoint', 'body must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 3) throw new VerifyError('checkpoint', 'needs exactly origin, size and root lines');
  const [origin, size, root] = lines;
  if (origin.length === 0) throw new VerifyError('checkpoint', 'empty origin');
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new VerifyError('checkpoint', 'tree size must be decimal without leading zeros');
  const n = BigInt(size);
  if (n >= 1n << 64n) throw new VerifyError('checkpoint', 'tree size out of range');
  const rootBytes = b64decode(root);
  if (rootBytes.length !== 32) throw new VerifyError('checkpoint', 'root hash must be 32 bytes');
  return { origin, size: n, root: rootBytes };
}

async function ed25519Verify(rawKey, signature, message) {
  try {
    const key = await crypto.subtle.importKey('raw', rawKey, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch (e) {
    if (e && e.name === 'NotSupportedError') {
      throw new VerifyError('signature', 'this browser has no Ed25519 in WebCrypto');
    }
    return false;
  }
}

/**
 * Verifies a ledger's signed checkpoint against the pinned key and returns
 * `{ origin, size (BigInt), root, keyName, keyId, keyIdHex }`.
 *
 * `pinned` is a parsed verifier key; `expectedOrigin` the ledger's origin
 * (`<installation origin>/<ledger id>`). The pinned key is trusted under its own name and, when
 * the expected origin extends that name with `/…`, under the ledger's origin (how Custos names
 * the signer of each ledger's notes). Signatures by other keys are ignored (witnesses, rotated
 * keys); a bad signature by the pinned key rejects the note; at least one must be valid.
 */
export async function verifyCheckpoint(note, pinned, expectedOrigin) {
  const parsed = parseSignedNote(note);
  const trusted = [pinned];
  if (expectedOrigin && expectedOrigin.startsWith(pinned.name + '/')) {
    trusted.push(await renamed(pinned, expectedOrigin));
  }
  let signedBy = null;
  const msg = te.encode(parsed.text);
  for (const sig of parsed.signatures) {
    const key = trusted.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!key) continue;
    if (sig.signature.length !== 64 || !(await ed25519Verify(key.raw, sig.signature, msg))) {
      throw new VerifyError('signature', `invalid signature by ${sig.name}+${keyIdHex(sig.keyId)}`);
    }
    signedBy = signedBy || { keyName: sig.name, keyId: sig.keyId };
  }
  if (!signedBy) {
    throw new VerifyError('signature', `no valid signature by the pinned key ${pinned.name}+${pinned.keyIdHex}`);
  }
  const body = parseCheckpointBody(parsed.text);
  if (expectedOrigin !== undefined && body.origin !== expectedOrigin) {
    throw new VerifyError('origin', `checkpoint is for origin ${body.origin}, expected ${expectedOrigin}`);
  }
  return { ...body, ...signedBy, keyIdHex: keyIdHex(signedBy.keyId), pinnedKeyIdHex: pinned.keyIdHex };
}

// ---------------------------------------------------------------- canonical event bytes

const V1_FIELDS = [
  'action', 'actor_id', 'actor_role', 'break_glass', 'client_ip', 'event_id', 'imported', 'index',
  'ledger_id', 'occurred_at', 'outcome', 'patient_id', 'reason', 'request_id', 'resource_ids',
  'resource_type', 'user_agent', 'v',
];
const V2_FIELDS = [...V1_FIELDS, 'correlation_id', 'patient_ids'];

/** RFC 8785 (JCS) for the JSON values events hold: strings, integers, booleans, null, arrays, objects. */
export function jcs(value) {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new VerifyError('canonical', 'only safe integers occur in events');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map(jcs).join(',') + ']';
  if (typeof value === 'object') {
    // Default string order is by UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(value).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + jcs(value[k])).join(',') + '}';
  }
  throw new VerifyError('canonical', `unsupported value ${typeof value}`);
}

/**
 * The canonical bytes of an event as the API lists it (`GET /v1/audit/events` items:
 * `format_version`, `seq`, `ledger_id` and the event fields). Only format versions 1 and 2
 * exist; version 1 has neither `correlation_id` nor `patient_ids`.
 */
export function canonicalEventBytes(item) {
  const v = item.format_version;
  if (v !== 1 && v !== 2) throw new VerifyError('canonical', `unsupported event format version ${v}`, item.seq);
  const src = { ...item, v, index: item.seq };
  const out = {};
  for (const f of v >= 2 ? V2_FIELDS : V1_FIELDS) {
    if (!(f in src)) throw new VerifyError('canonical', `event lacks ${f}`, item.seq);
    out[f] = src[f];
  }
  return te.encode(jcs(out));
}

// ---------------------------------------------------------------- proofs

function toBig(n, what) {
  if (typeof n === 'bigint') return n;
  if (Number.isSafeInteger(n) && n >= 0) return BigInt(n);
  if (typeof n === 'string' && /^(0|[1-9][0-9]*)$/.test(n)) return BigInt(n);
  throw new VerifyError('proof', `${what} is not a non-negative integer`);
}

function hashes(list, what) {
  if (!Array.isArray(list) || list.length > 64) throw new VerifyError('proof', `${what} must be a list of at most 64 hashes`);
  return list.map((h) => {
    const b = typeof h === 'string' ? b64decode(h) : h;
    if (b.length !== 32) throw new VerifyError('proof', `${what}: a hash is not 32 bytes`);
    return b;
  });
}

/** The root an RFC 9162 inclusion proof leads to (§2.1.3.2), or throws. */
export async function rootFromInclusion(leaf, index, treeSize, proof) {
  const idx = toBig(index, 'index');
  const size = toBig(treeSize, 'tree size');
  if (idx >= size) throw new VerifyError('inclusion', `index ${idx} is not below tree size ${size}`, Number(idx));
  let fn = idx;
  let sn = size - 1n;
  let r = leaf;
  for (const p of hashes(proof, 'inclusion proof')) {
    if (sn === 0n) throw new VerifyError('inclusion', 'proof is too long', Number(idx));
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError('inclusion', 'proof is too short', Number(idx));
  return r;
}

/** Checks `leaf` is at `index` of the tree of `treeSize` leaves with `root`. */
export async function verifyInclusion(leaf, index, treeSize, proof, root) {
  const r = await rootFromInclusion(leaf, index, treeSize, proof);
  if (!equal(r, root)) {
    throw new VerifyError('inclusion', `the proof from the leaf at index ${index} does not lead to the signed root`, Number(index));
  }
}

/** RFC 9162 §2.1.4.2, with the trivial cases as src/audit/merkle.rs handles them. */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const m = toBig(oldSize, 'old size');
  const n = toBig(newSize, 'new size');
  const path = hashes(proof, 'consistency proof');
  if (m > n) throw new VerifyError('consistency', `old size ${m} is larger than new size ${n}`);
  if (m === n || m === 0n) {
    if (path.length) throw new VerifyError('consistency', 'proof must be empty');
    if (m === n && !equal(oldRoot, newRoot)) throw new VerifyError('consistency', 'roots differ at equal sizes');
    return;
  }
  let rest = path;
  let first = oldRoot;
  if ((m & (m - 1n)) !== 0n) {
    if (!path.length) throw new VerifyError('consistency', 'proof is empty');
    first = path[0];
    rest = path.slice(1);
  }
  let fn = m - 1n;
  let sn = n - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (sn === 0n) throw new VerifyError('consistency', 'proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError('consistency', 'proof is too short');
  if (!equal(fr, oldRoot)) throw new VerifyError('consistency', `the proof does not lead to the old root (size ${m})`);
  if (!equal(sr, newRoot)) throw new VerifyError('consistency', `the proof does not lead to the new root (size ${n})`);
}

// ---------------------------------------------------------------- the checks the console runs

/**
 * Verifies one event end to end and returns the list of what was checked, in words:
 * `{ ok: true, checks: [...] }`, or `{ ok: false, index, step, error, checks }` with the checks
 * that passed before the failure.
 *
 * `event`: the API item; `checkpoint`: the signed note text; `proof`: the inclusion proof
 * response (`{ index, tree_size, proof: [base64…] }`); `pinnedKey`: the key string the auditor
 * pinned; `origin`: the installation origin (the ledger's is `<origin>/<ledger id>`).
 */
export async function verifyEvent({ event, checkpoint, proof, pinnedKey, origin }) {
  const checks = [];
  const index = event && event.seq;
  try {
    const key = await parseVerifierKey(pinnedKey);
    const expected = origin ? `${origin}/${event.ledger_id}` : `${key.name}/${event.ledger_id}`;
    const cp = await verifyCheckpoint(checkpoint, key, expected);
    checks.push(`signature by key ${cp.keyName}+${cp.keyIdHex} (pinned ${key.name}+${key.keyIdHex}) over checkpoint of size ${cp.size}, origin ${cp.origin}`);
    if (BigInt(proof.tree_size) !== cp.size || proof.index !== index) {
      throw new VerifyError('proof', `the proof is for index ${proof.index} in size ${proof.tree_size}, not index ${index} in the checkpoint's size ${cp.size}`, index);
    }
    const bytes = canonicalEventBytes(event);
    const leaf = await leafHash(bytes);
    checks.push(`leaf hash at index ${index} recomputed in this browser from the event's fields (${bytes.length} canonical bytes): ${b64encode(leaf)}`);
    const root = await rootFromInclusion(leaf, index, cp.size, proof.proof);
    checks.push(`inclusion path of length ${proof.proof.length} hashed from that leaf`);
    if (!equal(root, cp.root)) {
      throw new VerifyError('inclusion', `the event at index ${index} is not the one the signed checkpoint commits to: its recomputed leaf leads to root ${b64encode(root)}, the checkpoint signs ${b64encode(cp.root)}`, index);
    }
    checks.push(`root equality: computed root = signed root ${b64encode(cp.root)}`);
    return { ok: true, index, checks, keyIdHex: key.keyIdHex, treeSize: Number(cp.size) };
  } catch (e) {
    if (!(e instanceof VerifyError)) throw e;
    return { ok: false, index: e.index ?? index, step: e.step, error: e.message, checks };
  }
}

/**
 * Verifies two checkpoints of one ledger and the consistency proof between them
 * (`{ from, to, proof }` as the API returns it). Same result shape as `verifyEvent`.
 */
export async function verifyCheckpointPair({ older, newer, consistency, pinnedKey, expectedOrigin }) {
  const checks = [];
  try {
    const key = await parseVerifierKey(pinnedKey);
    const a = await verifyCheckpoint(older, key, expectedOrigin);
    const b = await verifyCheckpoint(newer, key, expectedOrigin);
    checks.push(`signatures by key ${a.keyName}+${a.keyIdHex} over checkpoints of sizes ${a.size} and ${b.size}`);
    if (BigInt(consistency.from) !== a.size || BigInt(consistency.to) !== b.size) {
      throw new VerifyError('proof', `the proof is from ${consistency.from} to ${consistency.to}, not ${a.size} to ${b.size}`);
    }
    await verifyConsistency(a.size, b.size, a.root, b.root, consistency.proof);
    checks.push(`consistency path of length ${consistency.proof.length}: the tree of size ${a.size} is a prefix of the tree of size ${b.size}`);
    return { ok: true, checks, from: Number(a.size), to: Number(b.size) };
  } catch (e) {
    if (!(e instanceof VerifyError)) throw e;
    return { ok: false, step: e.step, error: e.message, checks };
  }
}
