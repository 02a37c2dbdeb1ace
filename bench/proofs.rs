//! Proof latency on a large ledger. The ledger is synthetic but stored exactly as the
//! sequencer stores it: `audit_log` rows (leaf i = SHA-256(i as 8 big-endian bytes), made in
//! SQL), every complete subtree of level >= 1 in `audit_tree_nodes` (computed here, COPYed),
//! and the ledger state row. Baseline: a bare `SELECT 1` round trip on the same connection.

use std::time::Instant;

use custos::audit::merkle::{self, Hash, TreeState};
use custos::audit::proofs;
use rand::RngExt;
use sha2::{Digest, Sha256};

use crate::common::{BenchDb, percentile};

const CHUNK: u64 = 1_000_000;

fn leaf(i: u64) -> Hash {
    Sha256::digest(i.to_be_bytes()).into()
}

pub async fn run(n: u64, queries: usize) {
    println!("proofs: ledger of {n} entries, {queries} queries of each kind");
    let db = BenchDb::new(4).await;
    let org = db.org().await;
    let t = Instant::now();
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("SET synchronous_commit = off").execute(&mut *conn).await.unwrap();
    let mut lo = 0;
    while lo < n {
        let hi = (lo + CHUNK).min(n);
        sqlx::query(
            "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, action, resource_type, \
             resource_ids, outcome, break_glass, imported, leaf_hash, chain_hash) \
             SELECT $1, i, gen_random_uuid(), now(), $1, 'read', 'patient', '{}', 'success', false, false, \
                    sha256(int8send(i)), sha256(int8send(i)) FROM generate_series($2::int8, $3::int8 - 1) i",
        )
        .bind(org)
        .bind(lo as i64)
        .bind(hi as i64)
        .execute(&mut *conn)
        .await
        .unwrap();
        lo = hi;
        eprint!("\r  audit_log rows: {lo}   ");
    }
    eprintln!();
    let mut tree = TreeState::new();
    let mut created = Vec::with_capacity(64);
    let mut copy = conn.copy_in_raw("COPY audit_tree_nodes (ledger_id, level, idx, hash) FROM STDIN").await.unwrap();
    let mut buf = String::with_capacity(16 << 20);
    let org_text = org.to_string();
    for i in 0..n {
        created.clear();
        tree.append_recording(leaf(i), &mut created).unwrap();
        for node in created.iter().filter(|c| c.id.level > 0) {
            buf.push_str(&org_text);
            buf.push_str(&format!("\t{}\t{}\t\\\\x{}\n", node.id.level, node.id.index, hex::encode(node.hash)));
        }
        if buf.len() > (15 << 20) {
            copy.send(buf.as_bytes()).await.unwrap();
            buf.clear();
        }
    }
    copy.send(buf.as_bytes()).await.unwrap();
    let nodes = copy.finish().await.unwrap();
    let root = tree.root();
    sqlx::query(
        "INSERT INTO audit_ledgers (ledger_id, org_id, size, chain_head, tree_state, root_hash) \
         VALUES ($1, $1, $2, $3, $4, $5)",
    )
    .bind(org)
    .bind(n as i64)
    .bind(&[0u8; 32][..])
    .bind(tree.to_bytes())
    .bind(&root[..])
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE audit_log; ANALYZE audit_tree_nodes").execute(&mut *conn).await.ok();
    let size: (String,) = sqlx::query_as("SELECT pg_size_pretty(pg_database_size(current_database()))")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    println!("  built in {:.0} s: {nodes} stored subtree nodes, database {}", t.elapsed().as_secs_f64(), size.0);

    let mut rng = rand::rng();
    let mut base = Vec::with_capacity(queries);
    for _ in 0..queries {
        let t = Instant::now();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        base.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut inc = Vec::with_capacity(queries);
    let mut con = Vec::with_capacity(queries);
    for _ in 0..queries {
        let index = rng.random_range(0..n);
        let t = Instant::now();
        let p = proofs::inclusion(&mut conn, org, index, n).await.unwrap();
        inc.push(t.elapsed().as_secs_f64() * 1e3);
        merkle::verify_inclusion(&leaf(index), index, n, &p.proof, &root).unwrap();
        let from = rng.random_range(1..n);
        let t = Instant::now();
        let (proof, old, new) = proofs::consistency(&mut conn, org, from, n).await.unwrap();
        con.push(t.elapsed().as_secs_f64() * 1e3);
        merkle::verify_consistency(from, n, &old, &new, &proof).unwrap();
        assert_eq!(new, root);
    }
    for v in [&mut base, &mut inc, &mut con] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let show = |name: &str, v: &[f64]| {
        println!(
            "  {name:<32} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            percentile(v, 0.5),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    };
    show("baseline SELECT 1 round trip", &base);
    show("inclusion proof (verified)", &inc);
    show("consistency proof (verified)", &con);
    drop(conn);
    db.drop().await;
}
