//! One collection, batch by batch. Each batch is one transaction (as `system` for the
//! organization): look up what is already mapped, parse and validate, resolve references,
//! seal, bulk-insert every table plus the `legacy_id_map` rows, check the embedded rows, and
//! commit — so a batch is either fully in (data and mappings) or not at all, which is what
//! makes a killed run resumable. If the database refuses the bulk insert, the batch is
//! retried document by document under savepoints and only the refused documents are rejected.

use std::collections::HashSet;

use anyhow::Context;
use serde_json::Value;
use sqlx::PgConnection;

use super::collection::{Collection, Fail, Sample};
use super::fields::Unknown;
use super::lookup;
use super::reject::Reason;
use super::rows::Rows;
use super::source::RawLine;
use super::write::{self, TableCounts};
use super::{Run, ejson};

/// What one batch did.
#[derive(Default)]
pub struct BatchOutcome {
    pub imported: u64,
    pub already: u64,
    pub rejected: u64,
}

struct Candidate {
    raw: RawLine,
    id: String,
    map: serde_json::Map<String, Value>,
}

/// Processes one batch of lines on `conn` (inside the caller's transaction).
pub async fn batch<C: Collection>(
    conn: &mut PgConnection,
    run: &mut Run<'_>,
    lines: Vec<RawLine>,
    unknown: &mut Unknown,
) -> anyhow::Result<BatchOutcome> {
    let clock = std::time::Instant::now();
    let mut out = BatchOutcome::default();
    let mut seen = HashSet::new();
    let mut candidates = Vec::with_capacity(lines.len());
    for raw in lines {
        match decode(&raw) {
            Err(reason) => {
                run.reject(C::NAME, &raw, None, &reason)?;
                out.rejected += 1;
            }
            Ok((id, map)) => {
                if !seen.insert(id.clone()) {
                    run.reject(C::NAME, &raw, Some(&id), &Reason::DuplicateId)?;
                    out.rejected += 1;
                } else {
                    candidates.push(Candidate { raw, id, map });
                }
            }
        }
    }
    let ids: Vec<String> = candidates.iter().map(|c| c.id.clone()).collect();
    let mapped = lookup::mapped(conn, run.org, &run.source, C::NAME, &ids, run.started).await.context("database")?;

    let mut fresh = Vec::with_capacity(candidates.len());
    let mut probed = false;
    let mut present_ids = Vec::with_capacity(candidates.len());
    for c in candidates {
        match mapped.get(&c.id) {
            Some((_, true)) => {
                run.reject(C::NAME, &c.raw, Some(&c.id), &Reason::DuplicateId)?;
                out.rejected += 1;
            }
            Some((new_id, false)) => {
                out.already += 1;
                // Re-derive what the imported document holds, for the embedded check and the
                // sealed-value probe of one document per batch.
                let mut scratch = Unknown::default();
                if let Ok(doc) = C::parse(&c.map, &c.id, &mut scratch, run.today) {
                    C::expected(&doc, &mut run.expected);
                    present_ids.push(c.id.clone());
                    if !probed && let Some((table, column, plain)) = C::sealed_probe(&doc) {
                        probed = run.sample(Sample { table, column, row_id: *new_id, digest: digest(&plain) });
                    }
                }
            }
            None => match C::parse(&c.map, &c.id, unknown, run.today) {
                Ok(doc) => fresh.push((c, doc)),
                Err(reason) => {
                    run.reject(C::NAME, &c.raw, Some(&c.id), &reason)?;
                    out.rejected += 1;
                }
            },
        }
    }

    let mut wanted = Vec::new();
    for (_, doc) in &fresh {
        C::references(doc, &mut wanted);
    }
    let refs = lookup::refs(conn, run.org, &run.source, &wanted).await.context("database")?;
    let t_lookup = clock.elapsed();

    let samples_before = run.sealer.samples.len();
    let mut rows = Rows::default();
    let mut built: Vec<(Candidate, TableCounts)> = Vec::with_capacity(fresh.len());
    for (c, doc) in fresh {
        let mut expected = TableCounts::new();
        C::expected(&doc, &mut expected);
        let mut doc_rows = Rows::default();
        run.sealer.sampling = built.is_empty() && run.sealer.samples.len() < super::MAX_SAMPLES;
        match C::build(doc, &c.id, &refs, &mut run.sealer, &mut doc_rows) {
            Ok(()) => {
                rows.append(&mut doc_rows);
                built.push((c, expected));
            }
            Err(Fail::Reject(reason)) => {
                run.sealer.samples.truncate(samples_before);
                run.reject(C::NAME, &c.raw, Some(&c.id), &reason)?;
                out.rejected += 1;
            }
            Err(Fail::Crypto(e)) => return Err(anyhow::Error::from(e).context("sealing")),
        }
    }
    run.sealer.sampling = false;

    let t_build = clock.elapsed();
    if !built.is_empty() {
        sqlx::query("SAVEPOINT import_bulk").execute(&mut *conn).await.context("database")?;
        match write::insert(conn, run.org, &run.source, &rows).await {
            Ok(counts) => {
                sqlx::query("RELEASE SAVEPOINT import_bulk").execute(&mut *conn).await.context("database")?;
                add(&mut run.report.rows_written, &counts);
                for (c, expected) in built {
                    add(&mut run.expected, &expected);
                    present_ids.push(c.id);
                    out.imported += 1;
                }
            }
            Err(_) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_bulk").execute(&mut *conn).await.context("database")?;
                run.sealer.samples.truncate(samples_before);
                drop(rows);
                one_by_one::<C>(conn, run, built, &refs, &mut present_ids, &mut out).await?;
            }
        }
    }
    let t_write = clock.elapsed();
    let actual = lookup::actual(conn, run.org, &run.source, C::NAME, &present_ids).await.context("database")?;
    add(&mut run.actual, &actual);
    tracing::debug!(
        collection = C::NAME,
        imported = out.imported,
        lookup_ms = t_lookup.as_millis() as u64,
        build_ms = (t_build - t_lookup).as_millis() as u64,
        write_ms = (t_write - t_build).as_millis() as u64,
        check_ms = (clock.elapsed() - t_write).as_millis() as u64,
        "batch done"
    );
    Ok(out)
}

/// The fallback: each document alone under its own savepoint.
async fn one_by_one<C: Collection>(
    conn: &mut PgConnection,
    run: &mut Run<'_>,
    built: Vec<(Candidate, TableCounts)>,
    refs: &super::collection::Refs,
    present_ids: &mut Vec<String>,
    out: &mut BatchOutcome,
) -> anyhow::Result<()> {
    for (c, expected) in built {
        let mut scratch = Unknown::default();
        let doc = match C::parse(&c.map, &c.id, &mut scratch, run.today) {
            Ok(d) => d,
            Err(reason) => {
                run.reject(C::NAME, &c.raw, Some(&c.id), &reason)?;
                out.rejected += 1;
                continue;
            }
        };
        let mut rows = Rows::default();
        match C::build(doc, &c.id, refs, &mut run.sealer, &mut rows) {
            Ok(()) => {}
            Err(Fail::Reject(reason)) => {
                run.reject(C::NAME, &c.raw, Some(&c.id), &reason)?;
                out.rejected += 1;
                continue;
            }
            Err(Fail::Crypto(e)) => return Err(anyhow::Error::from(e).context("sealing")),
        }
        sqlx::query("SAVEPOINT import_doc").execute(&mut *conn).await.context("database")?;
        match write::insert(conn, run.org, &run.source, &rows).await {
            Ok(counts) => {
                sqlx::query("RELEASE SAVEPOINT import_doc").execute(&mut *conn).await.context("database")?;
                add(&mut run.report.rows_written, &counts);
                add(&mut run.expected, &expected);
                present_ids.push(c.id);
                out.imported += 1;
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_doc").execute(&mut *conn).await.context("database")?;
                run.reject(C::NAME, &c.raw, Some(&c.id), &Reason::from_db(&e))?;
                out.rejected += 1;
            }
        }
    }
    Ok(())
}

/// Parses a line into its `_id` and document.
fn decode(raw: &RawLine) -> Result<(String, serde_json::Map<String, Value>), Reason> {
    if !raw.utf8 {
        return Err(Reason::MalformedJson { column: 0 });
    }
    let value: Value = serde_json::from_str(&raw.text).map_err(|e| Reason::MalformedJson { column: e.column() })?;
    let Value::Object(map) = value else { return Err(Reason::NotADocument) };
    let id = match map.get("_id") {
        None | Some(Value::Null) => return Err(Reason::MissingField("_id".into())),
        Some(v) => ejson::oid(v).map_err(|p| super::fields::invalid("_id".into(), p))?,
    };
    Ok((id, map))
}

fn digest(plain: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(plain).into()
}

pub fn add(into: &mut TableCounts, from: &TableCounts) {
    for (t, n) in from {
        *into.entry(t).or_default() += n;
    }
}
