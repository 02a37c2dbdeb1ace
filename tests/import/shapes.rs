//! Every shape `mongoexport` writes: NDJSON or `--jsonArray` (one line or pretty), with a
//! UTF-8 byte order mark and CRLF line ends — the same database as a plain NDJSON import.
//! And every file is checked before the first write: an unreadable one stops the run with
//! nothing written.

use std::os::unix::fs::PermissionsExt;

use custos::keys::RootKeys;

use crate::harness;

/// The lines of an NDJSON file as a pretty-ish JSON array with a BOM and CRLF line ends.
pub fn to_json_array(ndjson: &str) -> Vec<u8> {
    let docs: Vec<&str> = ndjson.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = b"\xEF\xBB\xBF[\r\n".to_vec();
    out.extend_from_slice(docs.join(",\r\n").as_bytes());
    out.extend_from_slice(b"\r\n]\r\n");
    out
}

/// A copy of an export directory (the same bytes: bcrypt salts included).
pub fn copy(dir: &std::path::Path) -> std::path::PathBuf {
    let to = std::env::temp_dir().join(format!("custos-import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&to).unwrap();
    for name in ["users", "conversations", "prescriptions", "activity_logs"] {
        std::fs::copy(dir.join(format!("{name}.json")), to.join(format!("{name}.json"))).unwrap();
    }
    to
}

#[tokio::test]
async fn json_arrays_with_bom_and_crlf_import_like_ndjson() {
    // No broken documents: a malformed line would swallow its neighbours inside an array.
    let (dir, manifest) = harness::export(25, 41, 0.0);
    let plain = harness::env_for(dir.clone(), custos::demo::Manifest::default(), RootKeys::random()).await;
    let expected = plain.import(&plain.options()).await;
    assert!(expected.balanced, "{}", expected.render());

    let shaped_dir = copy(&dir);
    let users = std::fs::read_to_string(shaped_dir.join("users.json")).unwrap();
    std::fs::write(shaped_dir.join("users.json"), to_json_array(&users)).unwrap();
    let convs = std::fs::read_to_string(shaped_dir.join("conversations.json")).unwrap();
    // One line, no spaces: what `mongoexport --jsonArray` writes by default.
    let one_line = format!("[{}]", convs.lines().collect::<Vec<_>>().join(","));
    std::fs::write(shaped_dir.join("conversations.json"), one_line).unwrap();
    let rx = std::fs::read_to_string(shaped_dir.join("prescriptions.json")).unwrap();
    std::fs::write(shaped_dir.join("prescriptions.json"), format!("\u{feff}{}", rx.replace('\n', "\r\n"))).unwrap();

    let shaped = harness::env_for(shaped_dir, manifest, RootKeys::random()).await;
    let report = shaped.import(&shaped.options()).await;
    assert!(report.balanced, "{}", report.render());
    let shapes: Vec<_> = report.collections.iter().map(|c| format!("{:?}", c.shape.unwrap())).collect();
    assert_eq!(shapes, ["Array", "Array", "Lines", "Lines"]);
    for (a, b) in report.collections.iter().zip(&expected.collections) {
        assert_eq!((a.read, a.imported, a.rejected), (b.read, b.imported, b.rejected), "{}", a.name);
    }
    assert_eq!(shaped.dump().await, plain.dump().await);
}

#[tokio::test]
async fn an_unreadable_file_stops_the_run_before_anything_is_written() {
    let env = harness::env(10, 42, 0.0).await;
    let convs = env.dir.join("conversations.json");
    std::fs::remove_file(&convs).unwrap();
    std::fs::create_dir(&convs).unwrap();
    let rx = env.dir.join("prescriptions.json");
    std::fs::set_permissions(&rx, std::fs::Permissions::from_mode(0o000)).unwrap();
    let unreadable = std::fs::File::open(&rx).is_err(); // root reads anything

    let err = custos::import::run(&env.db.pool, &env.crypto, &env.options()).await.unwrap_err().to_string();
    assert!(err.contains("conversations.json: not a regular file"), "{err}");
    if unreadable {
        assert!(err.contains("prescriptions.json: cannot read it"), "{err}");
    }
    let written: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM legacy_id_map), \
         (SELECT count(*) FROM audit_inbox WHERE action = 'import')",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(written, (1, 0, 0), "only the bootstrap admin; no import started");
}

#[tokio::test]
async fn a_database_that_is_down_is_named_by_host_and_port() {
    let env = harness::env(3, 43, 0.0).await;
    // A port nothing listens on.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy_with(sqlx::postgres::PgConnectOptions::new().host("127.0.0.1").port(1).username("postgres"));
    let err = custos::import::run(&pool, &env.crypto, &env.options()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.starts_with("cannot connect to PostgreSQL at 127.0.0.1:1: "), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert_eq!(text.matches("refused").count(), 1, "the cause once: {text}");
}
