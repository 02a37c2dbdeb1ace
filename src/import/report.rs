//! The no-data-loss report: per collection `read = imported + already imported + rejected`,
//! rows written per table, the embedded-items and orphan checks, and a sample of sealed
//! fields opened again and compared with the source. `balanced` decides the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::collection::{Reservoir, Sample};
use super::fields::{Normalized, Unknown};
use super::source::Shape;
use super::write::TableCounts;
use crate::crypto::Keyring;

#[derive(Debug, Default, Serialize)]
pub struct CollectionReport {
    pub name: &'static str,
    pub file_present: bool,
    pub sha256: String,
    pub read: u64,
    pub imported: u64,
    pub already_imported: u64,
    pub rejected: u64,
    /// Embedded items rejected alone while their document was imported (not in `rejected`:
    /// that counts documents).
    pub items_rejected: u64,
    /// `lines` (NDJSON) or `array` (`--jsonArray`).
    pub shape: Option<Shape>,
    pub balanced: bool,
    pub unknown_fields: Unknown,
    /// Values carried over changed, per field and kind (docs/import.md, mapping tables).
    pub normalized: Normalized,
}

#[derive(Debug, Serialize)]
pub struct EmbeddedCheck {
    pub table: &'static str,
    /// Rows the imported and already-imported documents of this run's files carry.
    pub expected: u64,
    /// Rows found for those documents after their batch was written.
    pub actual: u64,
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct OrphanCheck {
    pub check: &'static str,
    pub violations: i64,
}

/// The sealed-value check of one table.
#[derive(Debug, Default, Serialize)]
pub struct TableSample {
    pub table: &'static str,
    /// Sealed values of this table the run wrote or found already imported.
    pub population: u64,
    pub checked: u64,
    pub matched: u64,
    pub mismatched: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct SampleCheck {
    /// The sample size per table: every table's `checked` is min(size, population).
    pub size_per_table: usize,
    pub tables: Vec<TableSample>,
    pub checked: u64,
    pub matched: u64,
    pub mismatched: u64,
}

impl SampleCheck {
    /// Every sampled value matched and no table was sampled short.
    pub fn ok(&self) -> bool {
        self.mismatched == 0
            && self
                .tables
                .iter()
                .all(|t| t.checked == t.population.min(self.size_per_table as u64) && t.mismatched == 0)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub org_id: Uuid,
    pub source: String,
    pub dry_run: bool,
    pub source_sha256: String,
    pub collections: Vec<CollectionReport>,
    pub rows_written: TableCounts,
    pub rows_written_total: u64,
    pub embedded: Vec<EmbeddedCheck>,
    pub orphans: Vec<OrphanCheck>,
    pub sealed_sample: SampleCheck,
    pub rejects_file: String,
    /// A batch closed at this many documents…
    pub batch_size: usize,
    /// …or this many bytes of source text.
    pub batch_bytes: usize,
    pub elapsed_seconds: f64,
    pub rows_per_second: f64,
    pub balanced: bool,
}

impl Report {
    pub fn finish(&mut self, expected: &TableCounts, actual: &TableCounts) {
        for c in &mut self.collections {
            c.balanced = c.read == c.imported + c.already_imported + c.rejected;
        }
        self.embedded = expected
            .iter()
            .filter(|(t, _)| **t != "audit_inbox")
            .map(|(t, e)| {
                let a = actual.get(t).copied().unwrap_or(0);
                EmbeddedCheck { table: t, expected: *e, actual: a, ok: *e == a }
            })
            .collect();
        self.rows_written_total = self.rows_written.values().sum();
        self.balanced = self.collections.iter().all(|c| c.balanced)
            && self.embedded.iter().all(|e| e.ok)
            && self.orphans.iter().all(|o| o.violations == 0)
            && self.sealed_sample.ok();
    }

    /// The human-readable summary printed without `--json`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mode = if self.dry_run { " (dry run: nothing written)" } else { "" };
        let _ = writeln!(
            s,
            "import report{mode}: org {} source {} sha256 {}",
            self.org_id, self.source, self.source_sha256
        );
        let _ = writeln!(
            s,
            "{:<15} {:>9} {:>9} {:>9} {:>9}  balanced",
            "collection", "read", "imported", "already", "rejected"
        );
        for c in &self.collections {
            let _ = writeln!(
                s,
                "{:<15} {:>9} {:>9} {:>9} {:>9}  {}{}{}",
                c.name,
                c.read,
                c.imported,
                c.already_imported,
                c.rejected,
                if c.balanced { "yes" } else { "NO" },
                if c.file_present { "" } else { "  (no file)" },
                match c.shape {
                    Some(Shape::Array) => "  (JSON array)",
                    _ => "",
                }
            );
            if c.items_rejected > 0 {
                let _ = writeln!(s, "  embedded items rejected alone (document imported): {}", c.items_rejected);
            }
            for (field, kinds) in &c.normalized.fields {
                for (kind, n) in kinds {
                    let _ = writeln!(s, "  normalized: {field}: {kind} ×{n}");
                }
            }
            if c.unknown_fields.total() > 0 {
                let list: Vec<String> = c.unknown_fields.fields.iter().map(|(k, v)| format!("{k}×{v}")).collect();
                let _ = writeln!(s, "  unknown fields (not imported): {}", list.join(", "));
            }
        }
        let _ = writeln!(s, "rows written ({} total):", self.rows_written_total);
        for (t, n) in &self.rows_written {
            let _ = writeln!(s, "  {t:<22} {n:>9}");
        }
        let bad: Vec<String> = self
            .embedded
            .iter()
            .filter(|e| !e.ok)
            .map(|e| format!("{} expected {} found {}", e.table, e.expected, e.actual))
            .collect();
        let _ =
            writeln!(s, "embedded items: {}", if bad.is_empty() { "all present".to_owned() } else { bad.join("; ") });
        for o in &self.orphans {
            let _ = writeln!(s, "orphan check: {}: {}", o.check, o.violations);
        }
        let sm = &self.sealed_sample;
        let _ = writeln!(
            s,
            "sealed sample (up to {} per table): {} checked, {} matched, {} mismatched",
            sm.size_per_table, sm.checked, sm.matched, sm.mismatched
        );
        for t in &sm.tables {
            let _ = writeln!(
                s,
                "  {:<22} {:>5} of {:>9} values checked, {} mismatched",
                t.table, t.checked, t.population, t.mismatched
            );
        }
        let _ = writeln!(s, "rejects: {}", self.rejects_file);
        let _ = writeln!(s, "{:.1} s, {:.0} rows/s", self.elapsed_seconds, self.rows_per_second);
        let _ = writeln!(s, "{}", if self.balanced { "BALANCED" } else { "NOT BALANCED" });
        s
    }
}

/// The sealed columns the sample may name (the SQL below is built from this list only).
const SEALED: &[(&str, &str)] = &[
    ("users", "email_enc"),
    ("users", "display_name_enc"),
    ("patients", "mrn_enc"),
    ("patients", "given_name_enc"),
    ("patients", "family_name_enc"),
    ("patients", "birth_date_enc"),
    ("patients", "ssn_enc"),
    ("patients", "phone_enc"),
    ("patients", "address_enc"),
    ("patients", "email_enc"),
    ("patient_medical_info", "emergency_contact_enc"),
    ("allergies", "reaction_enc"),
    ("medications", "notes_enc"),
    ("medical_history", "notes_enc"),
    ("conversations", "subject_enc"),
    ("messages", "body_enc"),
    ("attachments", "filename_enc"),
    ("attachments", "content_enc"),
    ("prescriptions", "instructions_enc"),
    ("prescriptions", "cancel_reason_enc"),
];

/// The most sampled bytes held at once while checking them.
const SAMPLE_READ_BYTES: u64 = 16 * 1024 * 1024;

/// Reads every sampled value back, opens it and compares its digest with the source's.
pub async fn verify_samples(
    conn: &mut PgConnection,
    keyring: &Keyring,
    reservoirs: &BTreeMap<&'static str, Reservoir>,
) -> Result<SampleCheck, sqlx::Error> {
    let mut out = SampleCheck { size_per_table: super::SAMPLE_PER_TABLE, ..SampleCheck::default() };
    for (table, reservoir) in reservoirs {
        let mut t = TableSample { table, population: reservoir.population, ..TableSample::default() };
        let mut groups: BTreeMap<&'static str, Vec<&Sample>> = BTreeMap::new();
        for s in &reservoir.samples {
            groups.entry(s.column).or_default().push(s);
        }
        for (column, group) in groups {
            t.checked += group.len() as u64;
            if !SEALED.contains(&(table, column)) {
                t.mismatched += group.len() as u64;
                continue;
            }
            // Read back in chunks of at most SAMPLE_READ_BYTES (256 attachments of 10 MiB must
            // not be held at once): sizes first, then the values chunk by chunk.
            let ids: Vec<Uuid> = group.iter().map(|s| s.row_id).collect();
            let sql = format!("SELECT id, coalesce(octet_length({column}), 0)::int8 FROM {table} WHERE id = ANY($1)");
            let sizes: Vec<(Uuid, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&ids).fetch_all(&mut *conn).await?;
            let mut chunks: Vec<Vec<Uuid>> = vec![Vec::new()];
            let mut bytes = 0u64;
            for (id, size) in sizes {
                let size = u64::try_from(size).unwrap_or(0);
                if bytes + size > SAMPLE_READ_BYTES && chunks.last().is_some_and(|c| !c.is_empty()) {
                    chunks.push(Vec::new());
                    bytes = 0;
                }
                bytes += size;
                if let Some(c) = chunks.last_mut() {
                    c.push(id);
                }
            }
            let wanted: BTreeMap<Uuid, [u8; 32]> = group.iter().map(|s| (s.row_id, s.digest)).collect();
            let mut matched = 0u64;
            let sql = format!("SELECT id, {column} FROM {table} WHERE id = ANY($1)");
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                let rows: Vec<(Uuid, Option<Vec<u8>>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(chunk).fetch_all(&mut *conn).await?;
                for (id, v) in rows {
                    let ok = v
                        .and_then(|v| keyring.open(table, column, id, &v).ok())
                        .is_some_and(|plain| Some(&<[u8; 32]>::from(Sha256::digest(&plain[..]))) == wanted.get(&id));
                    matched += u64::from(ok);
                }
            }
            t.matched += matched;
            t.mismatched += group.len() as u64 - matched.min(group.len() as u64);
        }
        out.checked += t.checked;
        out.matched += t.matched;
        out.mismatched += t.mismatched;
        out.tables.push(t);
    }
    Ok(out)
}

/// Checks that do not depend on this run's files: every mapping points at a row, every
/// imported patient account has its patient record, every imported conversation's doctor
/// is on the patient's care team, and no foreign key on the imported tables is unvalidated.
pub async fn orphans(conn: &mut PgConnection, org: Uuid, source: &str) -> Result<Vec<OrphanCheck>, sqlx::Error> {
    let checks: [(&'static str, &str); 4] = [
        (
            "legacy ids mapped to a missing row",
            "SELECT count(*) FROM legacy_id_map m WHERE m.org_id = $1 AND m.source = $2 AND ( \
             (m.collection = 'users' AND NOT EXISTS (SELECT 1 FROM users x WHERE x.id = m.new_id)) OR \
             (m.collection = 'conversations' AND NOT EXISTS (SELECT 1 FROM conversations x WHERE x.id = m.new_id)) OR \
             (m.collection = 'prescriptions' AND NOT EXISTS (SELECT 1 FROM prescriptions x WHERE x.id = m.new_id)))",
        ),
        (
            "imported patient accounts without a patient record",
            "SELECT count(*) FROM legacy_id_map m JOIN users u ON u.id = m.new_id \
             WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND u.role = 'patient' \
             AND NOT EXISTS (SELECT 1 FROM patients p WHERE p.user_id = u.id)",
        ),
        (
            "imported conversations whose doctor is not on the care team",
            "SELECT count(*) FROM legacy_id_map m JOIN conversations c ON c.id = m.new_id \
             WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' \
             AND c.assigned_clinician_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM care_team_members t \
             WHERE t.patient_id = c.patient_id AND t.clinician_id = c.assigned_clinician_id)",
        ),
        (
            "unvalidated foreign keys on imported tables",
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated AND $1::uuid IS NOT NULL \
             AND $2::text IS NOT NULL AND conrelid::regclass::text = ANY(ARRAY['users', 'patients', \
             'patient_medical_info', 'allergies', 'medications', 'medical_history', 'conversations', \
             'care_team_members', 'messages', 'symptoms', 'attachments', 'prescriptions'])",
        ),
    ];
    let mut out = Vec::with_capacity(checks.len());
    for (check, sql) in checks {
        let violations: i64 = sqlx::query_scalar(sql).bind(org).bind(source).fetch_one(&mut *conn).await?;
        out.push(OrphanCheck { check, violations });
    }
    Ok(out)
}
