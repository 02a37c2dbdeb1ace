//! Tests for `merkle`: RFC 6962 / Certificate Transparency vectors, and an
//! exhaustive comparison against the RFC 9162 recursive definitions.

use super::*;

fn h(s: &str) -> Hash {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

/// The 8 leaves of CT's merkle_tree_test (transparency-dev/merkle proof/verify_test.go).
fn ct_leaves() -> Vec<Hash> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|d| leaf_hash(&hex::decode(d).unwrap()))
        .collect()
}

/// Roots of the CT tree at sizes 1..=8.
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn empty_root_is_sha256_of_nothing() {
    let want = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(empty_root(), want);
    assert_eq!(root_of(&[]), want);
    assert_eq!(TreeState::new().root(), want);
    assert_eq!(MemoryTree::new().root(), want);
}

#[test]
fn ct_roots() {
    let leaves = ct_leaves();
    let tree = MemoryTree::from_leaves(&leaves);
    let mut state = TreeState::new();
    for (i, want) in CT_ROOTS.iter().enumerate() {
        state.append(leaves[i]).unwrap();
        let want = h(want);
        assert_eq!(root_of(&leaves[..=i]), want, "root_of size {}", i + 1);
        assert_eq!(state.root(), want, "state size {}", i + 1);
        assert_eq!(root_from_source(&tree, i as u64 + 1).unwrap(), want);
    }
}

#[test]
fn ct_inclusion_proofs() {
    // (0-based leaf index, tree size, proof); the Go vectors are 1-based.
    let vectors: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    let leaves = ct_leaves();
    let tree = MemoryTree::from_leaves(&leaves);
    for (index, size, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let root = h(CT_ROOTS[size as usize - 1]);
        assert_eq!(inclusion_proof(&tree, index, size).unwrap(), want);
        verify_inclusion(&leaves[index as usize], index, size, &want, &root).unwrap();
    }
}

#[test]
fn ct_consistency_proofs() {
    let vectors: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    let tree = MemoryTree::from_leaves(&ct_leaves());
    for (m, n, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let (r1, r2) = (h(CT_ROOTS[m as usize - 1]), h(CT_ROOTS[n as usize - 1]));
        assert_eq!(consistency_proof(&tree, m, n).unwrap(), want, "{m}->{n}");
        verify_consistency(m, n, &r1, &r2, &want).unwrap();
    }
}

// RFC 9162 §2.1 recursive definitions, straight from the text, as the oracle.
fn split(n: usize) -> usize {
    // Largest power of two strictly smaller than n (n > 1).
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn ref_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => node_hash(&ref_mth(&d[..split(n)]), &ref_mth(&d[split(n)..])),
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = split(d.len());
    let (mut p, other) =
        if m < k { (ref_path(m, &d[..k]), ref_mth(&d[k..])) } else { (ref_path(m - k, &d[k..]), ref_mth(&d[..k])) };
    p.push(other);
    p
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = split(n);
    let (mut p, other) = if m <= k {
        (ref_subproof(m, &d[..k], b), ref_mth(&d[k..]))
    } else {
        (ref_subproof(m - k, &d[k..], false), ref_mth(&d[..k]))
    };
    p.push(other);
    p
}

const N: usize = 64;

fn test_leaves() -> Vec<Hash> {
    (0..N as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn exhaustive_inclusion_up_to_64() {
    let leaves = test_leaves();
    let tree = MemoryTree::from_leaves(&leaves);
    let wrong_leaf = leaf_hash(b"not in the tree");
    for n in 1..=N {
        let root = ref_mth(&leaves[..n]);
        assert_eq!(root_of(&leaves[..n]), root);
        for m in 0..n {
            let proof = inclusion_proof(&tree, m as u64, n as u64).unwrap();
            assert_eq!(proof, ref_path(m, &leaves[..n]), "PATH({m}, D[{n}])");
            assert!(inclusion_proof_nodes(m as u64, n as u64).unwrap().len() >= proof.len());
            let (mu, nu) = (m as u64, n as u64);
            verify_inclusion(&leaves[m], mu, nu, &proof, &root).unwrap();
            assert!(verify_inclusion(&wrong_leaf, mu, nu, &proof, &root).is_err());
            for j in (0..n as u64).filter(|&j| j != mu) {
                assert!(verify_inclusion(&leaves[m], j, nu, &proof, &root).is_err());
            }
            assert!(verify_inclusion(&leaves[m], mu, nu * 2, &proof, &root).is_err());
            assert!(verify_inclusion(&leaves[m], nu, nu, &proof, &root).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                assert!(verify_inclusion(&leaves[m], mu, nu, shorter, &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(&leaves[m], mu, nu, &longer, &root).is_err());
        }
    }
}

#[test]
fn exhaustive_consistency_up_to_64() {
    let leaves = test_leaves();
    let tree = MemoryTree::from_leaves(&leaves);
    let bogus = leaf_hash(b"bogus root");
    for n in 1..=N {
        let r2 = ref_mth(&leaves[..n]);
        for m in 1..=n {
            let r1 = ref_mth(&leaves[..m]);
            let proof = consistency_proof(&tree, m as u64, n as u64).unwrap();
            assert_eq!(proof, ref_subproof(m, &leaves[..n], true), "PROOF({m}, D[{n}])");
            let (mu, nu) = (m as u64, n as u64);
            verify_consistency(mu, nu, &r1, &r2, &proof).unwrap();
            assert!(verify_consistency(mu, nu, &bogus, &r2, &proof).is_err());
            assert!(verify_consistency(mu, nu, &r1, &bogus, &proof).is_err());
            if m < n {
                assert!(verify_consistency(mu, nu, &r2, &r1, &proof).is_err());
                assert!(verify_consistency(mu, nu, &r1, &r2, &proof[1..]).is_err());
                assert!(verify_consistency(mu, nu, &r1, &r2, &proof[..proof.len() - 1]).is_err());
                assert!(verify_consistency(mu + 1, nu, &r1, &r2, &proof).is_err());
            }
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    verify_consistency(0, 0, &a, &a, &[]).unwrap();
    verify_consistency(0, 5, &a, &b, &[]).unwrap();
    verify_consistency(3, 3, &a, &a, &[]).unwrap();
    assert!(verify_consistency(3, 3, &a, &b, &[]).is_err());
    assert!(verify_consistency(3, 3, &a, &a, &[a]).is_err());
    assert!(verify_consistency(4, 3, &a, &b, &[]).is_err());
    assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    assert!(consistency_proof(&MemoryTree::new(), 4, 3).is_err());
    assert!(verify_inclusion(&a, 0, 0, &[], &a).is_err());
    verify_inclusion(&a, 0, 1, &[], &a).unwrap();
}

#[test]
fn tree_state_records_every_complete_node() {
    let leaves = test_leaves();
    let tree = MemoryTree::from_leaves(&leaves);
    let mut state = TreeState::new();
    let mut created = Vec::new();
    for leaf in &leaves {
        state.append_recording(*leaf, &mut created).unwrap();
    }
    assert_eq!(state.root(), tree.root());
    // 64 leaves -> 127 complete nodes, each exactly once and matching the tree.
    assert_eq!(created.len(), 2 * N - 1);
    let mut seen = std::collections::HashSet::new();
    for node in &created {
        assert!(seen.insert(node.id));
        assert_eq!(tree.subtree_hash(node.id), Some(node.hash));
    }
    // Batches in uneven chunks give the same nodes in the same order.
    let mut batched = TreeState::new();
    let mut all = Vec::new();
    for chunk in leaves.chunks(7) {
        all.extend(batched.append_batch(chunk).unwrap());
    }
    assert_eq!(all, created);
    assert_eq!(batched, state);
}

#[test]
fn proofs_from_recorded_nodes_only() {
    // What the DB would hold: only the nodes reported by appends, in a map.
    let leaves = test_leaves();
    let mut state = TreeState::new();
    let map: HashMap<NodeId, Hash> =
        state.append_batch(&leaves[..45]).unwrap().into_iter().map(|n| (n.id, n.hash)).collect();
    for m in 0..45 {
        let ids = inclusion_proof_nodes(m, 45).unwrap();
        assert!(ids.iter().all(|id| map.contains_key(id)));
        assert!(ids.len() <= 2 * 6);
        assert_eq!(inclusion_proof(&map, m, 45).unwrap(), ref_path(m as usize, &leaves[..45]));
    }
    for m in 1..=45 {
        assert_eq!(consistency_proof(&map, m, 45).unwrap(), ref_subproof(m as usize, &leaves[..45], true));
        assert_eq!(TreeState::from_source(&map, m).unwrap().root(), ref_mth(&leaves[..m as usize]));
    }
    assert_eq!(root_nodes(45).len(), 4); // 45 = 0b101101
    let empty: HashMap<NodeId, Hash> = HashMap::new();
    assert!(matches!(inclusion_proof(&empty, 3, 45), Err(MerkleError::MissingNode(_))));
}

#[test]
fn tree_state_bytes_round_trip() {
    let leaves = test_leaves();
    let mut state = TreeState::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let bytes = state.to_bytes();
        assert_eq!(bytes.len(), 9 + 32 * (i as u64).count_ones() as usize);
        assert_eq!(TreeState::from_bytes(&bytes).unwrap(), state);
        state.append(*leaf).unwrap();
    }
    let bytes = state.to_bytes();
    assert!(TreeState::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(TreeState::from_bytes(&[]).is_err());
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert!(TreeState::from_bytes(&wrong_version).is_err());
}

#[test]
fn range_nodes_cover_exactly() {
    for begin in 0..40u64 {
        for end in begin..80u64 {
            let mut next = begin;
            for id in range_nodes(begin, end) {
                assert_eq!(id.begin(), next);
                next = id.end();
            }
            assert_eq!(next, end);
        }
    }
}

#[test]
fn chain_hash_is_plain_sha256_of_concatenation() {
    let leaf = leaf_hash(b"x");
    let mut data = CHAIN_SEED.to_vec();
    data.extend_from_slice(&leaf);
    let want: Hash = Sha256::digest(&data).into();
    assert_eq!(chain_hash(&CHAIN_SEED, &leaf), want);
}
