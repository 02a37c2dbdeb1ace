//! RFC 9162 §2.1 Merkle tree hashing for the audit ledger: leaf/node hashing, the
//! tree root (MTH), inclusion and consistency proof generation from stored
//! full-subtree hashes, proof verification, and the incremental tree state the
//! sequencer keeps per ledger.
//!
//! Storage model (tlog-tiles style): every *complete* subtree of the log is a
//! node `(level, index)` covering leaves `[index << level, (index + 1) << level)`;
//! level 0 is the leaves. Such a node never changes once it exists, so the DB can
//! INSERT it once and a proof only ever reads O(log n) of them. Subtrees on the
//! right edge that are not yet complete ("ephemeral" nodes) are never stored;
//! they are recomputed from the complete nodes that cover them.

use std::collections::HashMap;
use std::hash::BuildHasher;

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The first `chain_{-1}` value of the per-row hash chain.
pub const CHAIN_SEED: Hash = [0u8; 32];

/// Version byte of [`TreeState::to_bytes`], so the encoding can evolve.
const STATE_VERSION: u8 = 1;

/// Everything that can go wrong building or checking tree data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeDecreased { old_size: u64, new_size: u64 },
    #[error("subtree hash (level {}, index {}) is not available", .0.level, .0.index)]
    MissingNode(NodeId),
    #[error("inclusion proof does not verify: {0}")]
    InclusionInvalid(&'static str),
    #[error("consistency proof does not verify: {0}")]
    ConsistencyInvalid(&'static str),
    #[error("invalid tree state: {0}")]
    InvalidState(&'static str),
    #[error("the tree cannot grow past 2^64 - 1 leaves")]
    TreeFull,
}

type Result<T> = std::result::Result<T, MerkleError>;

/// `SHA-256(0x00 ‖ data)`: the 0x00 prefix keeps leaves and nodes in separate
/// domains so a node can never be passed off as a leaf (second preimage).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(data).finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`. Streams into the hasher: no buffer allocated.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Hash chain step `chain_i = SHA-256(chain_{i-1} ‖ leaf_i)`, seeded with [`CHAIN_SEED`].
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    Sha256::new().chain_update(prev).chain_update(leaf).finalize().into()
}

/// MTH over leaf hashes (RFC 9162 §2.1.1), in O(n) time and O(log n) memory.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut state = TreeState::new();
    for leaf in leaves {
        // A slice cannot hold 2^64 - 1 elements, so the only error is impossible.
        let _ = state.append(*leaf);
    }
    state.root()
}

/// A complete subtree: `level` 0 is a leaf; it covers `2^level` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }
    /// First leaf covered.
    pub const fn begin(self) -> u64 {
        self.index << self.level
    }
    /// One past the last leaf covered.
    pub const fn end(self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// A node created by an append, for the sequencer to INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredNode {
    pub id: NodeId,
    pub hash: Hash,
}

/// The maximal complete subtrees covering leaves `[begin, end)`, left to right.
/// For `[0, n)` these are one node per set bit of `n`, largest first.
pub fn range_nodes(begin: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let mut next = begin;
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        // As high as alignment of `next` allows, but not past `end`.
        let level = next.trailing_zeros().min(63 - (end - next).leading_zeros());
        let node = NodeId::new(level as u8, next >> level);
        next += 1u64 << level;
        Some(node)
    })
}

/// Read access to stored complete-subtree hashes. The DB layer typically asks
/// [`inclusion_proof_nodes`] / [`consistency_proof_nodes`] which ids it needs,
/// fetches them in one query into a map, and passes the map here.
pub trait HashSource {
    fn subtree_hash(&self, node: NodeId) -> Option<Hash>;
}

impl<S: BuildHasher> HashSource for HashMap<NodeId, Hash, S> {
    fn subtree_hash(&self, node: NodeId) -> Option<Hash> {
        self.get(&node).copied()
    }
}

/// One element of a proof: a stored node, or the hash of an incomplete
/// right-edge subtree over `[begin, end)` recomputed from stored nodes.
#[derive(Debug, Clone, Copy)]
enum Elem {
    Node(NodeId),
    Ephemeral { begin: u64, end: u64 },
}

/// Proof elements that connect complete node `(level, index)` to the root of
/// the tree of `size` leaves, bottom-up. Requires `index < size >> level`.
fn path_shape(level: u8, index: u64, size: u64, out: &mut Vec<Elem>) {
    // Above `fork` the paths to our node and to leaf `size` diverge: `fork` is the
    // last complete ancestor; its right sibling is the incomplete right edge.
    let inner = 63 - (index ^ (size >> level)).leading_zeros();
    for l in 0..inner {
        out.push(Elem::Node(NodeId::new(level + l as u8, (index >> l) ^ 1)));
    }
    let fork = NodeId::new(level + inner as u8, index >> inner);
    if fork.end() < size {
        out.push(Elem::Ephemeral { begin: fork.end(), end: size });
    }
    // Left siblings covering [0, fork.begin()), nearest (smallest) first.
    let begin = fork.begin();
    for bit in 0..64u8 {
        if (begin >> bit) & 1 == 1 {
            out.push(Elem::Node(NodeId::new(bit, (begin >> bit) - 1)));
        }
    }
}

fn inclusion_shape(index: u64, size: u64) -> Result<Vec<Elem>> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::with_capacity(64);
    path_shape(0, index, size, &mut out);
    Ok(out)
}

fn consistency_shape(old_size: u64, new_size: u64) -> Result<Vec<Elem>> {
    if old_size > new_size {
        return Err(MerkleError::SizeDecreased { old_size, new_size });
    }
    let mut out = Vec::with_capacity(65);
    if old_size == 0 || old_size == new_size {
        return Ok(out);
    }
    // The largest complete subtree ending at old_size; it is the old root itself
    // (which the verifier already has) exactly when old_size is a power of two.
    let level = old_size.trailing_zeros();
    let index = (old_size - 1) >> level;
    if index != 0 {
        out.push(Elem::Node(NodeId::new(level as u8, index)));
    }
    path_shape(level as u8, index, new_size, &mut out);
    Ok(out)
}

fn shape_nodes(shape: &[Elem]) -> Vec<NodeId> {
    let mut ids = Vec::with_capacity(shape.len() + 8);
    for elem in shape {
        match *elem {
            Elem::Node(id) => ids.push(id),
            Elem::Ephemeral { begin, end } => ids.extend(range_nodes(begin, end)),
        }
    }
    ids
}

fn fetch<S: HashSource + ?Sized>(src: &S, id: NodeId) -> Result<Hash> {
    src.subtree_hash(id).ok_or(MerkleError::MissingNode(id))
}

/// MTH of leaves `[begin, end)` (non-empty, `end` the tree's right edge) from the
/// complete nodes covering it: they shrink left to right, so fold from the right.
fn range_hash<S: HashSource + ?Sized>(src: &S, begin: u64, end: u64) -> Result<Hash> {
    let mut stack = Vec::with_capacity(64);
    for id in range_nodes(begin, end) {
        stack.push(fetch(src, id)?);
    }
    let mut acc = stack.pop().ok_or(MerkleError::InvalidState("empty range"))?;
    while let Some(left) = stack.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

fn resolve<S: HashSource + ?Sized>(src: &S, shape: &[Elem]) -> Result<Vec<Hash>> {
    shape
        .iter()
        .map(|elem| match *elem {
            Elem::Node(id) => fetch(src, id),
            Elem::Ephemeral { begin, end } => range_hash(src, begin, end),
        })
        .collect()
}

/// Stored node ids that [`inclusion_proof`] will read.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeId>> {
    Ok(shape_nodes(&inclusion_shape(index, size)?))
}

/// Stored node ids that [`consistency_proof`] will read.
pub fn consistency_proof_nodes(old_size: u64, new_size: u64) -> Result<Vec<NodeId>> {
    Ok(shape_nodes(&consistency_shape(old_size, new_size)?))
}

/// Stored node ids that [`root_from_source`] will read.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    range_nodes(0, size).collect()
}

/// RFC 9162 §2.1.3.1 `PATH(index, D[size])`, leaf-side first.
pub fn inclusion_proof<S: HashSource + ?Sized>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>> {
    resolve(src, &inclusion_shape(index, size)?)
}

/// RFC 9162 §2.1.4.1 `PROOF(old_size, D[new_size])`; empty when `old_size` is 0
/// or equal to `new_size`.
pub fn consistency_proof<S: HashSource + ?Sized>(src: &S, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
    resolve(src, &consistency_shape(old_size, new_size)?)
}

/// Root of the tree of `size` leaves, e.g. to re-sign a historic size.
pub fn root_from_source<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// RFC 9162 §2.1.3.2, step for step.
pub fn verify_inclusion(leaf_hash: &Hash, index: u64, tree_size: u64, proof: &[Hash], root: &Hash) -> Result<()> {
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, size: tree_size });
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(MerkleError::InclusionInvalid("proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::InclusionInvalid("proof is too short"));
    }
    if r != *root {
        return Err(MerkleError::InclusionInvalid("root mismatch"));
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2 for `0 < old_size < new_size`. The RFC leaves the trivial
/// cases to the caller; here: `old_size == new_size` needs an empty proof and
/// equal roots, `old_size == 0` needs an empty proof (the empty tree is a prefix
/// of every tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if old_size > new_size {
        return Err(MerkleError::SizeDecreased { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::ConsistencyInvalid("proof must be empty"));
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::ConsistencyInvalid("roots differ"));
        }
        return Ok(());
    }
    // Step 1-2: when old_size is a power of two the old root is the first node.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return Err(MerkleError::ConsistencyInvalid("proof is empty")),
        }
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(MerkleError::ConsistencyInvalid("proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::ConsistencyInvalid("proof is too short"));
    }
    if fr != *old_root {
        return Err(MerkleError::ConsistencyInvalid("old root mismatch"));
    }
    if sr != *new_root {
        return Err(MerkleError::ConsistencyInvalid("new root mismatch"));
    }
    Ok(())
}

/// The compact range `[0, size)`: the hash of each maximal complete subtree
/// ("peak"), one per set bit of `size`, largest (leftmost) first. This is all the
/// state needed to append and to compute the root, so it fits in one DB row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeState {
    size: u64,
    peaks: Vec<Hash>,
}

impl TreeState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Current MTH; peaks shrink left to right, so fold from the right.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Appends without reporting nodes (the verifier's fast path).
    pub fn append(&mut self, leaf: Hash) -> Result<()> {
        self.push(leaf, |_, _| {})
    }

    /// Appends and pushes every complete node this leaf creates onto `created`:
    /// the leaf itself at level 0 (skip it if leaves are stored elsewhere), then
    /// each parent that became complete.
    pub fn append_recording(&mut self, leaf: Hash, created: &mut Vec<StoredNode>) -> Result<()> {
        self.push(leaf, |id, hash| created.push(StoredNode { id, hash }))
    }

    /// Appends a batch; returns the created nodes in creation order.
    pub fn append_batch(&mut self, leaves: &[Hash]) -> Result<Vec<StoredNode>> {
        let mut created = Vec::with_capacity(leaves.len() * 2);
        for leaf in leaves {
            self.append_recording(*leaf, &mut created)?;
        }
        Ok(created)
    }

    fn push(&mut self, leaf: Hash, mut record: impl FnMut(NodeId, Hash)) -> Result<()> {
        let mut index = self.size;
        let new_size = index.checked_add(1).ok_or(MerkleError::TreeFull)?;
        let (mut hash, mut level) = (leaf, 0u8);
        record(NodeId::new(0, index), hash);
        // Each trailing 1 bit of the old size is a peak that the new node completes.
        while index & 1 == 1 {
            let left = self.peaks.pop().ok_or(MerkleError::InvalidState("peaks do not match size"))?;
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            record(NodeId::new(level, index), hash);
        }
        self.peaks.push(hash);
        self.size = new_size;
        Ok(())
    }

    /// `version(1) ‖ size (u64 big-endian) ‖ peaks (32 bytes each)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 32 * self.peaks.len());
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        for peak in &self.peaks {
            out.extend_from_slice(peak);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (&version, rest) = bytes.split_first().ok_or(MerkleError::InvalidState("empty encoding"))?;
        if version != STATE_VERSION {
            return Err(MerkleError::InvalidState("unknown version"));
        }
        let (size_bytes, rest) = rest.split_first_chunk::<8>().ok_or(MerkleError::InvalidState("truncated size"))?;
        let size = u64::from_be_bytes(*size_bytes);
        if rest.len() != 32 * size.count_ones() as usize {
            return Err(MerkleError::InvalidState("peak count does not match size"));
        }
        let (peaks, _) = rest.as_chunks::<32>();
        Ok(Self { size, peaks: peaks.to_vec() })
    }

    /// Rebuilds the state at `size` from stored nodes (e.g. after losing the row).
    pub fn from_source<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Self> {
        let peaks = range_nodes(0, size).map(|id| fetch(src, id)).collect::<Result<_>>()?;
        Ok(Self { size, peaks })
    }
}

/// Every complete node of a tree, in memory: the reference [`HashSource`] for
/// tests and small tools.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(carry);
            let n = row.len();
            if !n.is_multiple_of(2) {
                break;
            }
            carry = node_hash(&row[n - 2], &row[n - 1]);
        }
    }

    pub fn root(&self) -> Hash {
        // Every node of [0, size) is present, so this cannot fail.
        root_from_source(self, self.size()).unwrap_or_else(|_| empty_root())
    }
}

impl HashSource for MemoryTree {
    fn subtree_hash(&self, node: NodeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(node.level))?;
        row.get(usize::try_from(node.index).ok()?).copied()
    }
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
