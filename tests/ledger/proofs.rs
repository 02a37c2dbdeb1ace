//! Every inclusion and consistency proof served from the database for all sizes up to 64
//! verifies against the root of exactly those leaves, and fails for a wrong leaf or root.

use custos::audit::merkle::{self, Hash};
use custos::audit::proofs::{self, ProofError};

use crate::{World, write_events};

const N: u64 = 64;

#[tokio::test]
async fn all_proofs_up_to_64_verify_from_the_database() {
    let w = World::new().await;
    // Several batches, so nodes are created across batch boundaries.
    for chunk in [1, 2, 5, 8, 13, 35] {
        write_events(&w.db.pool, Some(w.org_a), chunk).await;
        w.drain().await;
    }
    let mut conn = w.db.pool.acquire().await.unwrap();
    let leaves: Vec<Hash> =
        sqlx::query_scalar::<_, Vec<u8>>("SELECT leaf_hash FROM audit_log WHERE ledger_id = $1 ORDER BY seq")
            .bind(w.org_a)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.try_into().unwrap())
            .collect();
    assert_eq!(leaves.len() as u64, N);
    let roots: Vec<Hash> = (0..=N as usize).map(|n| merkle::root_of(&leaves[..n])).collect();
    for size in 1..=N {
        for index in 0..size {
            let p = proofs::inclusion(&mut conn, w.org_a, index, size).await.unwrap();
            assert_eq!(p.leaf_hash, leaves[index as usize]);
            assert_eq!(p.root, roots[size as usize]);
            merkle::verify_inclusion(&p.leaf_hash, index, size, &p.proof, &roots[size as usize]).unwrap();
            let wrong = merkle::leaf_hash(b"forged");
            assert!(merkle::verify_inclusion(&wrong, index, size, &p.proof, &roots[size as usize]).is_err());
        }
        for from in 0..=size {
            let (proof, old, new) = proofs::consistency(&mut conn, w.org_a, from, size).await.unwrap();
            assert_eq!((old, new), (roots[from as usize], roots[size as usize]));
            merkle::verify_consistency(from, size, &old, &new, &proof).unwrap();
            if from > 0 && from < size {
                let bad = merkle::leaf_hash(b"other history");
                assert!(merkle::verify_consistency(from, size, &bad, &new, &proof).is_err());
            }
        }
    }
    // Out of range and unknown ledgers are errors, not panics.
    assert!(matches!(proofs::inclusion(&mut conn, w.org_a, N, N).await, Err(ProofError::OutOfRange(_))));
    assert!(matches!(proofs::inclusion(&mut conn, w.org_a, 0, N + 1).await, Err(ProofError::OutOfRange(_))));
    assert!(matches!(proofs::consistency(&mut conn, w.org_a, 5, 4).await, Err(ProofError::OutOfRange(_))));
    assert!(matches!(proofs::inclusion(&mut conn, w.org_b, 0, 1).await, Err(ProofError::UnknownLedger)));
}

/// The console's checkpoint history: largest first, paged by tree size, each note signed for
/// its size and consistent with the one before it.
#[tokio::test]
async fn checkpoint_history_pages_largest_first_and_each_extends_the_last() {
    let w = World::new().await;
    for chunk in [3, 4, 5] {
        write_events(&w.db.pool, Some(w.org_a), chunk).await;
        w.drain().await;
    }
    let mut conn = w.db.pool.acquire().await.unwrap();
    let all = proofs::checkpoint_history(&mut conn, w.org_a, None, 100).await.unwrap();
    assert!(all.len() >= 2, "one checkpoint per drained batch at least: {}", all.len());
    assert_eq!(all[0].tree_size, 12);
    assert!(all.windows(2).all(|p| p[0].tree_size > p[1].tree_size));
    let origin = w.signer.origin_for(w.org_a);
    let opened: Vec<_> = all
        .iter()
        .map(|c| custos::audit::signing::open_for(c.signed_note.as_bytes(), &[w.signer.verifier()], &origin).unwrap())
        .collect();
    for (c, cp) in all.iter().zip(&opened) {
        assert_eq!(cp.size as i64, c.tree_size);
    }
    for pair in opened.windows(2) {
        let (proof, old, new) = proofs::consistency(&mut conn, w.org_a, pair[1].size, pair[0].size).await.unwrap();
        assert_eq!((old, new), (pair[1].root, pair[0].root));
        merkle::verify_consistency(pair[1].size, pair[0].size, &old, &new, &proof).unwrap();
    }
    let second = proofs::checkpoint_history(&mut conn, w.org_a, Some(12), 1).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].tree_size, all[1].tree_size);
    assert!(proofs::checkpoint_history(&mut conn, w.org_b, None, 10).await.unwrap().is_empty());
}
