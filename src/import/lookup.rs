//! Reads the import needs inside a batch's transaction: which documents are already mapped,
//! the new ids (and roles, patients) of referenced documents, and the rows that exist for a
//! batch's documents (the embedded-items check). All by `legacy_id_map`, one query each.
//!
//! These run as unnamed (not cached) statements, so every batch is planned for the tables as
//! they are now: they grow from nothing during an import, and a plan cached while they were
//! small (a generic plan, chosen after a few executions) scans what later holds 100k rows.

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::collection::{RefInfo, Refs};
use super::write::TableCounts;

/// Mapped documents of `collection` among `ids`: legacy id → new id.
pub async fn mapped(
    conn: &mut PgConnection,
    org: Uuid,
    source: &str,
    collection: &str,
    ids: &[String],
) -> Result<HashMap<String, Uuid>, sqlx::Error> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT legacy_id, new_id FROM legacy_id_map \
         WHERE org_id = $1 AND source = $2 AND collection = $3 AND legacy_id = ANY($4)",
    )
    .bind(org)
    .bind(source)
    .bind(collection)
    .bind(ids)
    .persistent(false)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Resolves referenced documents (users with role and patient id; conversations and
/// prescriptions with their patient).
pub async fn refs(
    conn: &mut PgConnection,
    org: Uuid,
    source: &str,
    wanted: &[(&'static str, String)],
) -> Result<Refs, sqlx::Error> {
    let mut out = Refs::new();
    for coll in ["users", "conversations", "prescriptions"] {
        let mut ids: Vec<&str> = wanted.iter().filter(|(c, _)| *c == coll).map(|(_, id)| id.as_str()).collect();
        if ids.is_empty() {
            continue;
        }
        ids.sort_unstable();
        ids.dedup();
        let sql = match coll {
            "users" => {
                "SELECT m.legacy_id, u.id, u.role::text, p.id FROM legacy_id_map m \
                 JOIN users u ON u.id = m.new_id LEFT JOIN patients p ON p.user_id = u.id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3)"
            }
            "conversations" => {
                "SELECT m.legacy_id, c.id, NULL::text, c.patient_id FROM legacy_id_map m \
                 JOIN conversations c ON c.id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' AND m.legacy_id = ANY($3)"
            }
            _ => {
                "SELECT m.legacy_id, x.id, NULL::text, x.patient_id FROM legacy_id_map m \
                 JOIN prescriptions x ON x.id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'prescriptions' AND m.legacy_id = ANY($3)"
            }
        };
        let rows: Vec<(String, Uuid, Option<String>, Option<Uuid>)> =
            sqlx::query_as(sql).bind(org).bind(source).bind(&ids).persistent(false).fetch_all(&mut *conn).await?;
        for (legacy, new_id, role, patient_id) in rows {
            out.insert((coll, legacy), RefInfo { new_id, role, patient_id });
        }
    }
    Ok(out)
}

/// Rows that exist now for the given documents of `collection`, per table (what
/// [`super::collection::Collection::expected`] predicts). Activity-log events are not
/// counted: `audit_inbox` is insert-only for the application role.
pub async fn actual(
    conn: &mut PgConnection,
    org: Uuid,
    source: &str,
    collection: &str,
    ids: &[String],
) -> Result<TableCounts, sqlx::Error> {
    let mut out = TableCounts::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let (sql, tables): (&str, &[&'static str]) = match collection {
        "users" => (
            "WITH u AS (SELECT new_id FROM legacy_id_map WHERE org_id = $1 AND source = $2 \
             AND collection = 'users' AND legacy_id = ANY($3)), \
             p AS (SELECT p.id FROM patients p JOIN u ON p.user_id = u.new_id) \
             SELECT (SELECT count(*) FROM users x JOIN u ON x.id = u.new_id), (SELECT count(*) FROM p), \
             (SELECT count(*) FROM patient_medical_info x JOIN p ON x.patient_id = p.id), \
             (SELECT count(*) FROM allergies x JOIN p ON x.patient_id = p.id), \
             (SELECT count(*) FROM medications x JOIN p ON x.patient_id = p.id), \
             (SELECT count(*) FROM medical_history x JOIN p ON x.patient_id = p.id)",
            &["users", "patients", "patient_medical_info", "allergies", "medications", "medical_history"],
        ),
        "conversations" => (
            "WITH c AS (SELECT new_id FROM legacy_id_map WHERE org_id = $1 AND source = $2 \
             AND collection = 'conversations' AND legacy_id = ANY($3)) \
             SELECT (SELECT count(*) FROM conversations x JOIN c ON x.id = c.new_id), \
             (SELECT count(*) FROM messages x JOIN c ON x.conversation_id = c.new_id), \
             (SELECT count(*) FROM symptoms x JOIN c ON x.conversation_id = c.new_id), \
             (SELECT count(*) FROM attachments x JOIN c ON x.conversation_id = c.new_id), 0::bigint, 0::bigint",
            &["conversations", "messages", "symptoms", "attachments"],
        ),
        "prescriptions" => (
            "SELECT (SELECT count(*) FROM prescriptions x JOIN legacy_id_map m ON x.id = m.new_id \
             WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'prescriptions' AND m.legacy_id = ANY($3)), \
             0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint",
            &["prescriptions"],
        ),
        _ => return Ok(out),
    };
    let row: (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(sql).bind(org).bind(source).bind(ids).persistent(false).fetch_one(conn).await?;
    let values = [row.0, row.1, row.2, row.3, row.4, row.5];
    for (t, v) in tables.iter().zip(values) {
        out.insert(t, u64::try_from(v).unwrap_or(0));
    }
    Ok(out)
}
