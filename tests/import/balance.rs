//! Counts balance with broken documents mixed in, every reject carries the reason the
//! generator planted, a second run changes nothing, a dry run writes nothing.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use crate::harness::{self, ndjson};

#[tokio::test]
async fn counts_balance_and_rejects_carry_the_planted_reasons() {
    let env = harness::env(60, 11, 0.12).await;
    let opts = env.options();
    let report = env.import(&opts).await;
    assert!(report.balanced, "{}", report.render());
    for c in &report.collections {
        assert_eq!(c.read, env.manifest.documents[c.name], "{}: every line is read", c.name);
        assert_eq!(c.read, c.imported + c.already_imported + c.rejected);
        assert!(c.imported > 0, "{}: something imported", c.name);
    }
    let users = &report.collections[0];
    assert!(users.unknown_fields.fields.contains_key("specialization"), "unknown fields are reported");

    // The sealed-value check: a uniform sample of a fixed size per table, over the whole run.
    let sm = &report.sealed_sample;
    assert_eq!(sm.size_per_table, custos::import::SAMPLE_PER_TABLE);
    let tables: Vec<&str> = sm.tables.iter().map(|t| t.table).collect();
    for t in ["users", "patients", "conversations", "messages", "attachments", "prescriptions"] {
        assert!(tables.contains(&t), "{t} sampled: {tables:?}");
    }
    let messages = sm.tables.iter().find(|t| t.table == "messages").unwrap();
    assert_eq!(messages.population, report.rows_written["messages"], "one sealed value per message, all offered");
    for t in &sm.tables {
        assert_eq!(t.checked, t.population.min(sm.size_per_table as u64), "{t:?}");
        assert_eq!((t.matched, t.mismatched), (t.checked, 0), "{t:?}");
    }

    let rejects = ndjson(&opts.rejects);
    let got: BTreeSet<(String, u64, String)> = rejects
        .iter()
        .map(|r| {
            (r["collection"].as_str().unwrap().into(), r["line"].as_u64().unwrap(), r["code"].as_str().unwrap().into())
        })
        .collect();
    let planted: BTreeSet<(String, u64, String)> =
        env.manifest.expected_rejects.iter().map(|e| (e.collection.clone(), e.line, e.code.clone())).collect();
    assert!(planted.len() >= 8, "the generator planted broken documents: {}", planted.len());
    assert_eq!(got, planted);
    let total_rejected: u64 = report.collections.iter().map(|c| c.rejected).sum();
    assert_eq!(total_rejected as usize, rejects.len());
    for kind in ["missing_field", "invalid_field", "malformed_json", "dangling_reference"] {
        assert!(planted.iter().any(|(_, _, c)| c == kind), "the export contains a {kind} document");
    }

    // Each reject keeps the original line; the reason names fields, never values.
    let sources: Vec<Vec<String>> = ["users", "conversations", "prescriptions", "activity_logs"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(env.dir.join(format!("{n}.json"))).unwrap().lines().map(String::from).collect()
        })
        .collect();
    for r in &rejects {
        let idx = ["users", "conversations", "prescriptions", "activity_logs"]
            .iter()
            .position(|n| *n == r["collection"].as_str().unwrap())
            .unwrap();
        let line = r["line"].as_u64().unwrap() as usize;
        assert_eq!(r["raw"].as_str().unwrap(), sources[idx][line - 1]);
        let reason = r["reason"].as_str().unwrap();
        assert!(!reason.contains('@') && !reason.contains("$2b$"), "reason leaks content: {reason}");
        if r["code"] != "malformed_json" {
            assert!(r["legacy_id"].is_string(), "legacy id when readable: {r}");
        }
        if r["code"] == "invalid_field" && r["collection"] == "users" {
            assert!(reason.contains("icd10Code"), "{reason}");
        }
    }
    let mode = std::fs::metadata(&opts.rejects).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the rejects file holds PHI: owner only");

    // The import is audited as it goes: started (before the first write), each collection with
    // its counts and file digest, completed with the source digest.
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM audit_inbox WHERE action = 'import' AND resource_type = 'legacy_import' AND NOT imported \
         ORDER BY id",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(reasons.len(), 6, "{reasons:#?}");
    assert!(reasons[0].contains("started by operator tester") && reasons[0].contains("users.json"), "{}", reasons[0]);
    for (reason, c) in reasons[1..5].iter().zip(&report.collections) {
        assert!(reason.contains(&format!("{}.json read {} imported {}", c.name, c.read, c.imported)), "{reason}");
        assert!(reason.contains(&c.sha256), "{reason}");
    }
    let done = &reasons[5];
    assert!(done.contains("operator tester completed") && done.contains(&report.source_sha256), "{done}");
    assert!(done.contains(&format!("users read {} imported {}", users.read, users.imported)), "{done}");
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let env = harness::env(40, 12, 0.08).await;
    let first = env.import(&env.options()).await;
    assert!(first.balanced, "{}", first.render());
    let before = env.dump().await;
    assert!(before.len() > 200, "the dump covers the data: {}", before.len());

    let second = env.import(&env.options()).await;
    assert!(second.balanced, "{}", second.render());
    for (a, b) in first.collections.iter().zip(&second.collections) {
        assert_eq!(b.imported, 0, "{}: nothing imported twice", b.name);
        assert_eq!(b.already_imported, a.imported, "{}: reported as already imported", b.name);
        assert_eq!(b.rejected, a.rejected, "{}: the same documents are rejected again", b.name);
    }
    assert_eq!(second.rows_written_total, 0);
    assert!(second.sealed_sample.checked > 0 && second.sealed_sample.mismatched == 0, "{:?}", second.sealed_sample);
    // Already imported documents are sampled too (one sealed value of each document's own row).
    let users = second.sealed_sample.tables.iter().find(|t| t.table == "users").unwrap();
    assert_eq!(users.population, second.collections[0].already_imported);
    assert_eq!(env.dump().await, before);
}

#[tokio::test]
async fn a_dry_run_validates_and_reports_but_writes_nothing() {
    let env = harness::env(30, 13, 0.1).await;
    let mut opts = env.options();
    opts.dry_run = true;
    let dry = env.import(&opts).await;
    assert!(dry.balanced, "{}", dry.render());
    assert!(dry.collections.iter().all(|c| c.imported > 0));
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM patients), (SELECT count(*) FROM legacy_id_map), \
         (SELECT count(*) FROM audit_inbox WHERE action = 'import' OR imported)",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(counts, (1, 0, 0, 0), "only the bootstrap admin exists");

    // The real run then does exactly what the dry run announced.
    let real = env.import(&env.options()).await;
    for (d, r) in dry.collections.iter().zip(&real.collections) {
        assert_eq!((d.imported, d.rejected), (r.imported, r.rejected), "{}", d.name);
    }
    assert_eq!(dry.rows_written, real.rows_written);
}
