//! Exact CSV (issue 17, item 5): every cell of `GET /v1/audit/export?format=csv` is the NDJSON
//! value, formula defusing touches only the free-text columns and is reversible, and the hash
//! chain and the checkpoint's root recompute from the CSV alone (docs/ledger-format.md, "CSV").

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custos::audit::formats::{CSV_FREE_TEXT, CSV_HEADER};
use reqwest::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{checkpoint, drain, get_raw, setup};

/// RFC 4180 records; a cell is `None` when empty and unquoted (null), `Some("")` when `""`.
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let cell = if chars.peek() == Some(&'"') {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next().expect("unterminated quoted cell") {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        s.push('"');
                    }
                    '"' => break,
                    c => s.push(c),
                }
            }
            Some(s)
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' || c == '\n' {
                    break;
                }
                assert!(c != '"' && c != '\r', "bare quote or CR in an unquoted cell");
                s.push(c);
                chars.next();
            }
            (!s.is_empty()).then_some(s)
        };
        row.push(cell);
        match chars.next() {
            Some(',') => {}
            Some('\n') => rows.push(std::mem::take(&mut row)),
            None => {
                assert!(row == vec![None], "the last line ends with a newline");
                return rows;
            }
            Some(c) => panic!("unexpected {c:?} after a quoted cell"),
        }
    }
}

/// What the CSV cell of an NDJSON value must be (docs/ledger-format.md).
fn expected_cell(column: &str, value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let defuse = CSV_FREE_TEXT.contains(&column) && text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']);
    Some(if defuse { format!("'{text}") } else { text })
}

/// The value back from a cell: one defusing apostrophe removed from free text.
fn value_of(column: &str, cell: &Option<String>) -> Value {
    match cell {
        None => Value::Null,
        Some(s) if CSV_FREE_TEXT.contains(&column) => Value::String(s.strip_prefix('\'').unwrap_or(s).to_owned()),
        Some(s) => Value::String(s.clone()),
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[tokio::test]
async fn csv_cells_are_the_ndjson_values_and_the_chain_recomputes_from_the_csv() {
    let (app, w) = setup().await;
    // Values a spreadsheet would run, an apostrophe that must survive, empty strings beside
    // nulls, and ids holding the old separator, commas and quotes.
    let texts = [
        Some("=HYPERLINK(\"http://evil.example\",\"x\")"),
        Some("+1"),
        Some("-2"),
        Some("@SUM(A1:A2)"),
        Some("\tleading tab"),
        Some("\rleading CR"),
        Some("'already quoted"),
        Some("''"),
        Some(""),
        Some("a, \"b\"\nc"),
        Some("curl/8.0 -v"),
        None,
    ];
    for (i, text) in texts.iter().enumerate() {
        let ids = vec!["=1+1".to_owned(), "a;b".into(), "c,d".into(), "\"q\"".into(), String::new(), format!("-{i}")];
        sqlx::query(
            "INSERT INTO audit_inbox (org_id, actor_role, action, resource_type, resource_ids, outcome, client_ip, \
             user_agent, reason, break_glass) \
             VALUES ($1, 'system', 'read', 'patient', $2, 'success', $3::inet, $4, $5, $6)",
        )
        .bind(w.org_a)
        .bind(&ids)
        .bind(if i % 2 == 0 { "2001:db8::1" } else { "10.0.0.0/8" })
        .bind(text)
        .bind(texts[texts.len() - 1 - i])
        .bind(i % 3 == 0)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    drain(&app).await;
    // A hash starting with `+` (base64's only formula character) must come out untouched: add
    // plain events until the ledger holds one (1 hash in 64 does).
    for _ in 0..100 {
        let plus: bool = sqlx::query_scalar(
            "SELECT coalesce(bool_or(left(encode(leaf_hash, 'base64'), 1) = '+' \
             OR left(encode(chain_hash, 'base64'), 1) = '+'), false) FROM audit_log WHERE ledger_id = $1",
        )
        .bind(w.org_a)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if plus {
            break;
        }
        sqlx::query(
            "INSERT INTO audit_inbox (org_id, actor_role, action, resource_type, outcome) \
             SELECT $1, 'system', 'read', 'patient', 'success' FROM generate_series(1, 16)",
        )
        .bind(w.org_a)
        .execute(&app.db.pool)
        .await
        .unwrap();
        drain(&app).await;
    }
    let cp = checkpoint(&app, w.org_a, &w.ua).await;

    let (s, ct, csv) = get_raw(&app, "/v1/audit/export?format=csv", &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let (s, _, ndjson) = get_raw(&app, "/v1/audit/export?format=ndjson", &w.ua).await;
    assert_eq!(s, StatusCode::OK);
    let events: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let mut rows = parse_csv(&csv).into_iter();
    let header: Vec<String> = rows.next().unwrap().into_iter().map(Option::unwrap).collect();
    assert_eq!(header.join(","), CSV_HEADER.trim_end());
    let rows: Vec<Vec<Option<String>>> = rows.collect();
    assert_eq!(rows.len(), events.len());
    assert_eq!(rows.len() as u64, cp.size, "the export covers the checkpoint");

    let mut chain = [0u8; 32];
    let mut leaves = Vec::new();
    let mut defused = 0;
    for (row, event) in rows.iter().zip(&events) {
        // Every cell is the NDJSON value, defused only where the column is free text.
        for (column, cell) in header.iter().zip(row) {
            let value = &event[column.as_str()];
            assert_eq!(cell, &expected_cell(column, value), "{column} of {event}");
            if cell.as_deref().is_some_and(|c| c.starts_with('\'')) {
                defused += 1;
            }
        }
        // The canonical event from the CSV alone: its columns, `seq` as index and
        // `format_version` as v; version 1 has no correlation_id and no patient_ids.
        let mut canonical = Map::new();
        let version: u64 = row[2].as_deref().unwrap().parse().unwrap();
        for (column, cell) in header.iter().zip(row) {
            let value = match column.as_str() {
                "leaf_hash" | "chain_hash" => continue,
                "correlation_id" | "patient_ids" if version < 2 => continue,
                "seq" => {
                    canonical.insert("index".into(), cell.as_deref().unwrap().parse::<u64>().unwrap().into());
                    continue;
                }
                "format_version" => {
                    canonical.insert("v".into(), version.into());
                    continue;
                }
                "resource_ids" | "patient_ids" => serde_json::from_str(cell.as_deref().unwrap()).unwrap(),
                "break_glass" | "imported" => Value::Bool(cell.as_deref() == Some("true")),
                _ => value_of(column, cell),
            };
            canonical.insert(column.clone(), value);
        }
        let bytes = custos::audit::canonical::canonicalize(&Value::Object(canonical)).unwrap();
        let leaf = sha256(&[&[0u8], &bytes]);
        chain = sha256(&[&chain, &leaf]);
        assert_eq!(B64.encode(leaf), row[20].clone().unwrap(), "leaf of {event}");
        assert_eq!(B64.encode(chain), row[21].clone().unwrap(), "chain at {event}");
        leaves.push(leaf);
    }
    assert!(defused >= 2 * 8, "the crafted free text was defused ({defused} cells)");
    let hash_cells = rows.iter().flat_map(|r| [&r[20], &r[21]]);
    assert!(hash_cells.flatten().any(|h| h.starts_with('+')), "a hash starting with + was exported as it is");
    assert_eq!(custos::audit::merkle::root_of(&leaves), cp.root, "the checkpoint's root, from the CSV");
}
