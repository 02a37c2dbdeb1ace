//! The report balances after any sequence of runs, interruptions and re-runs, and duplicates
//! are reported the same way wherever they sit: the first document carrying an `_id` owns it,
//! every later one is a `duplicate_id` reject — at any batch size, on every re-run.

use std::collections::BTreeSet;

use custos::keys::RootKeys;
use proptest::prelude::*;
use serde_json::json;

use crate::harness::{self, Env, ndjson};
use crate::values::{DOCTOR, doctor, patient, write_export};

type RejectKey = (String, u64, String, Option<String>);

fn reject_keys(path: &std::path::Path) -> BTreeSet<RejectKey> {
    ndjson(path)
        .iter()
        .map(|r| {
            (
                r["collection"].as_str().unwrap().to_owned(),
                r["line"].as_u64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
                r["item"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn duplicates_are_reported_the_same_at_any_batch_size_and_on_re_runs() {
    let x = "5f1d7a2b3c4d5e6f7a8b0101";
    let y = "5f1d7a2b3c4d5e6f7a8b0102";
    let mut invalid = patient(x, "first@example.org");
    invalid.as_object_mut().unwrap().remove("lastName");
    let users = vec![
        doctor().to_string(),
        invalid.to_string(),                          // line 2: owns x, rejected (missing lastName)
        patient(x, "second@example.org").to_string(), // line 3: duplicate of line 2, though valid
        patient(y, "y@example.org").to_string(),      // line 4: owns y, imported
        patient("5f1d7a2b3c4d5e6f7a8b0103", "z@example.org").to_string(),
        patient(y, "y@example.org").to_string(), // line 6: duplicate of line 4
    ];
    let conv = |id: &str| json!({"_id": {"$oid": id}, "patient": {"$oid": y}, "doctor": {"$oid": DOCTOR}}).to_string();
    let dir = write_export(&[
        ("users", users),
        ("conversations", vec![conv("6f1d7a2b3c4d5e6f7a8b0101"), conv("6f1d7a2b3c4d5e6f7a8b0101")]),
    ]);
    let mut outcomes = Vec::new();
    for batch in [1, 2, 1000] {
        let env = harness::env_for(dir.clone(), custos::demo::Manifest::default(), RootKeys::random()).await;
        let mut opts = env.options();
        opts.batch_size = batch;
        let first = env.import(&opts).await;
        assert!(first.balanced, "batch {batch}: {}", first.render());
        let rejects = ndjson(&opts.rejects);
        let dup = rejects.iter().find(|r| r["line"] == 3 && r["collection"] == "users").unwrap();
        assert_eq!(dup["reason"], "duplicate _id: the document at line 2 of this file has the same _id");
        let keys = reject_keys(&opts.rejects);
        let users = &first.collections[0];
        outcomes.push((users.imported, users.rejected, first.collections[1].imported, keys.clone()));

        // Re-runs: nothing written, everything balanced, the same rejects listed again.
        for _ in 0..2 {
            let mut again = env.options();
            again.batch_size = batch;
            let next = env.import(&again).await;
            assert!(next.balanced, "batch {batch}, re-run: {}", next.render());
            assert_eq!(next.rows_written_total, 0);
            assert_eq!(next.collections[0].already_imported, users.imported);
            assert_eq!(next.collections[0].rejected, users.rejected);
            assert_eq!(reject_keys(&again.rejects), keys, "batch {batch}: the re-run lists the duplicates too");
        }
    }
    assert_eq!(outcomes[0].0, 3, "doctor, y and z");
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "{outcomes:?}");
}

/// An export with `dups` extra copies of existing documents inserted at random places.
fn export_with_duplicates(patients: u64, seed: u64, dups: &[(usize, f64, f64)]) -> std::path::PathBuf {
    let (dir, _) = harness::export(patients, seed, 0.06);
    for &(coll, from, to) in dups {
        let name = ["users", "conversations", "prescriptions", "activity_logs"][coll];
        let path = dir.join(format!("{name}.json"));
        let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
        if lines.is_empty() {
            continue;
        }
        let copy = lines[((lines.len() - 1) as f64 * from) as usize].clone();
        let at = ((lines.len()) as f64 * to) as usize;
        lines.insert(at, copy);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    dir
}

async fn interrupted_then_resumed(env: &Env, batch: usize, kills: &[u64]) -> custos::import::Report {
    for &k in kills {
        let mut opts = env.options();
        opts.batch_size = batch;
        opts.interrupt_before_commit = Some(k);
        // Either interrupted at batch k or (fewer batches left) finished: both are fine.
        let _ = custos::import::run(&env.db.pool, &env.crypto, &opts).await;
    }
    let mut opts = env.options();
    opts.batch_size = batch;
    env.import(&opts).await
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]

    #[test]
    fn random_interruptions_and_duplicates_end_like_one_clean_run(
        seed in 0u64..1000,
        patients in 3u64..8,
        batch in 1usize..7,
        kills in proptest::collection::vec(1u64..12, 0..4),
        dups in proptest::collection::vec((0usize..4, 0.0f64..1.0, 0.0f64..1.0), 0..5),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = export_with_duplicates(patients, seed, &dups);
            let clean = harness::env_for(dir.clone(), custos::demo::Manifest::default(), RootKeys::random()).await;
            let mut clean_opts = clean.options();
            clean_opts.batch_size = batch;
            let expected = clean.import(&clean_opts).await;
            assert!(expected.balanced, "{}", expected.render());

            let resumed = harness::env_for(dir, custos::demo::Manifest::default(), RootKeys::random()).await;
            let report = interrupted_then_resumed(&resumed, batch, &kills).await;
            assert!(report.balanced, "kills {kills:?}: {}", report.render());
            for (a, b) in report.collections.iter().zip(&expected.collections) {
                assert_eq!(a.read, b.read);
                assert_eq!(a.imported + a.already_imported, b.imported, "{}", a.name);
                assert_eq!(a.rejected, b.rejected, "{}", a.name);
                assert_eq!(a.unknown_fields.fields, b.unknown_fields.fields, "tallies survive resumes");
                assert_eq!(a.normalized.fields, b.normalized.fields, "tallies survive resumes");
            }
            let mut last = resumed.options();
            last.batch_size = batch;
            let again = resumed.import(&last).await;
            assert!(again.balanced, "{}", again.render());
            assert_eq!(reject_keys(&last.rejects), reject_keys(&clean_opts.rejects));
            assert_eq!(resumed.dump().await, clean.dump().await);
        });
    }
}

#[tokio::test]
async fn a_failed_run_leaves_its_committed_rows_attributable() {
    let env = harness::env(12, 44, 0.0).await;
    let mut opts = env.options();
    opts.interrupt_before_commit = Some(3);
    let err = custos::import::run(&env.db.pool, &env.crypto, &opts).await.unwrap_err();
    assert!(err.to_string().contains("interrupted before committing batch 3"), "{err}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM legacy_id_map").fetch_one(&env.db.pool).await.unwrap();
    assert!(users > 0, "two batches committed");
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT outcome::text, reason FROM audit_inbox WHERE action = 'import' AND NOT imported ORDER BY id",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    // Started; users and conversations done (batches 1 and 2); failed during the prescriptions,
    // with the counts so far (the interrupted collection included).
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0].0, "success");
    assert!(events[0].1.contains("started by operator tester"), "{events:?}");
    assert!(events[1].1.contains("users.json read 15 imported 15"), "{events:?}");
    assert!(events[2].1.contains("conversations.json read 9 imported 9"), "{events:?}");
    let (outcome, failed) = &events[3];
    assert_eq!(outcome, "error");
    assert!(failed.contains("FAILED; users read 15 imported 15"), "{failed}");
    assert!(failed.contains("prescriptions read 12 imported 0"), "{failed}");
    assert!(failed.contains("cause: interrupted before committing batch 3"), "{failed}");
}
