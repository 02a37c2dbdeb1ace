//! One collection, batch by batch. Each batch is one transaction (as `system` for the
//! organization): decode, look up what is already mapped, parse and validate, resolve
//! references, seal, bulk-insert every table plus the `legacy_id_map` rows, check the embedded
//! rows, and commit — so a batch is either fully in (data and mappings) or not at all, which
//! is what makes a killed run resumable. A document rejected by validation never touches the
//! database; only if PostgreSQL itself refuses the bulk insert is the batch retried document
//! by document under savepoints, and only the refused documents are rejected.
//!
//! Outcomes do not depend on where a document sits: the first document of the file that
//! carries a given `_id` owns it (imported, already imported or rejected on its own merits),
//! every later one is a `duplicate_id` reject — in any batch, at any batch size, on any re-run.
//! Unknown fields and normalizations are tallied for every document read, imported now or
//! before, so a resumed run reports what one clean run would.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::PgConnection;

use super::collection::{Collection, Fail};
use super::fields::Tally;
use super::reject::Reason;
use super::rows::Rows;
use super::source::{RawLine, Unreadable};
use super::write::{self, TableCounts};
use super::{Run, db_error, ejson, lookup};

/// What one batch did.
#[derive(Default)]
pub struct BatchOutcome {
    pub imported: u64,
    pub already: u64,
    pub rejected: u64,
    /// Embedded items rejected alone (their document imported).
    pub items_rejected: u64,
}

/// What the batches of one file share: who owns each `_id` (the line of the first document
/// carrying it: ~80 bytes per document) and the tallies.
#[derive(Default)]
pub struct FileState {
    owners: HashMap<String, u64>,
    pub tally: Tally,
}

struct Candidate {
    raw: RawLine,
    id: String,
    map: serde_json::Map<String, Value>,
}

/// serde_json's nesting limit (objects and arrays).
const MAX_DEPTH: usize = 128;

/// Processes one batch of documents on `conn` (inside the caller's transaction).
pub async fn batch<C: Collection>(
    conn: &mut PgConnection,
    run: &mut Run<'_>,
    lines: Vec<RawLine>,
    state: &mut FileState,
) -> anyhow::Result<BatchOutcome> {
    let clock = std::time::Instant::now();
    let ep = run.endpoint.clone();
    let dbe = |e| db_error(&ep, e);
    let mut out = BatchOutcome::default();
    let mut candidates = Vec::with_capacity(lines.len());
    for raw in lines {
        let (id, decoded) = decode(&raw);
        let dup = id.as_ref().and_then(|id| match state.owners.get(id) {
            Some(first) => Some(*first),
            None => {
                state.owners.insert(id.clone(), raw.line);
                None
            }
        });
        match (dup, decoded, id) {
            (Some(first_line), _, id) => {
                run.reject(C::NAME, &raw, id.as_deref(), None, &Reason::DuplicateId { first_line })?;
                out.rejected += 1;
            }
            (None, Err(reason), id) => {
                run.reject(C::NAME, &raw, id.as_deref(), None, &reason)?;
                out.rejected += 1;
            }
            (None, Ok(map), Some(id)) => candidates.push(Candidate { raw, id, map }),
            (None, Ok(_), None) => unreachable!("a decoded document has an _id"),
        }
    }
    let ids: Vec<String> = candidates.iter().map(|c| c.id.clone()).collect();
    let mapped = lookup::mapped(conn, run.org, &run.source, C::NAME, &ids).await.map_err(dbe)?;

    let mut fresh = Vec::with_capacity(candidates.len());
    let mut present_ids = Vec::with_capacity(candidates.len());
    for c in candidates {
        let parsed = C::parse(&c.map, &c.raw.text, &c.id, &mut state.tally, run.today);
        match (mapped.get(&c.id), parsed) {
            (Some(new_id), parsed) => {
                out.already += 1;
                // What the imported document holds, for the embedded check, the sealed-value
                // sample and the rejects file (its items rejected alone are listed again).
                if let Ok(doc) = parsed {
                    C::expected(&doc, &mut run.expected);
                    out.items_rejected += item_rejects::<C>(run, &c, &doc)?;
                    present_ids.push(c.id.clone());
                    if let Some((table, column, plain)) = C::sealed_probe(&doc) {
                        run.sealer.offer_stored(table, column, *new_id, &plain);
                    }
                }
            }
            (None, Ok(doc)) => fresh.push((c, doc)),
            (None, Err(reason)) => {
                run.reject(C::NAME, &c.raw, Some(&c.id), None, &reason)?;
                out.rejected += 1;
            }
        }
    }

    let mut wanted = Vec::new();
    for (_, doc) in &fresh {
        C::references(doc, &mut wanted);
    }
    let refs = lookup::refs(conn, run.org, &run.source, &wanted).await.map_err(dbe)?;
    let t_lookup = clock.elapsed();

    let mut rows = Rows::default();
    let mut built: Vec<(Candidate, TableCounts)> = Vec::with_capacity(fresh.len());
    let mut items = Vec::new();
    for (c, doc) in fresh {
        let mut expected = TableCounts::new();
        C::expected(&doc, &mut expected);
        let dropped = C::item_rejects(&doc);
        let mut doc_rows = Rows::default();
        run.sealer.begin_document();
        match C::build(doc, &c.id, &refs, &mut run.sealer, &mut doc_rows) {
            Ok(()) => {
                rows.append(&mut doc_rows);
                items.push(dropped);
                built.push((c, expected));
            }
            Err(Fail::Reject(reason)) => {
                run.sealer.discard_document();
                run.reject(C::NAME, &c.raw, Some(&c.id), None, &reason)?;
                out.rejected += 1;
            }
            Err(Fail::Crypto(e)) => return Err(anyhow::Error::from(e).context("sealing")),
        }
    }

    let t_build = clock.elapsed();
    if !built.is_empty() {
        sqlx::query("SAVEPOINT import_bulk").execute(&mut *conn).await.map_err(dbe)?;
        match write::insert(conn, run.org, &run.source, &rows).await {
            Ok(counts) => {
                sqlx::query("RELEASE SAVEPOINT import_bulk").execute(&mut *conn).await.map_err(dbe)?;
                run.sealer.accept();
                add(&mut run.report.rows_written, &counts);
                for ((c, expected), dropped) in built.into_iter().zip(items) {
                    add(&mut run.expected, &expected);
                    out.items_rejected += write_item_rejects::<C>(run, &c, dropped)?;
                    present_ids.push(c.id);
                    out.imported += 1;
                }
            }
            Err(e) if is_connection(&e) => return Err(dbe(e)),
            Err(_) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_bulk").execute(&mut *conn).await.map_err(dbe)?;
                run.sealer.discard_batch();
                drop(rows);
                one_by_one::<C>(conn, run, built, &refs, &mut present_ids, &mut out).await?;
            }
        }
    }
    let t_write = clock.elapsed();
    let actual = lookup::actual(conn, run.org, &run.source, C::NAME, &present_ids).await.map_err(dbe)?;
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

/// A lost connection is not the documents' fault: the run stops (and can be resumed).
fn is_connection(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_))
}

/// Lists (again, on a re-run) the items of an imported document that were rejected alone.
fn item_rejects<C: Collection>(run: &mut Run<'_>, c: &Candidate, doc: &C::Doc) -> anyhow::Result<u64> {
    write_item_rejects::<C>(run, c, C::item_rejects(doc))
}

fn write_item_rejects<C: Collection>(
    run: &mut Run<'_>,
    c: &Candidate,
    dropped: Vec<(String, Reason)>,
) -> anyhow::Result<u64> {
    let n = dropped.len() as u64;
    for (item, reason) in dropped {
        run.reject(C::NAME, &c.raw, Some(&c.id), Some(&item), &reason)?;
    }
    Ok(n)
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
    let ep = run.endpoint.clone();
    let dbe = |e| db_error(&ep, e);
    for (c, expected) in built {
        // Tallied already: parse again into a scratch tally.
        let mut scratch = Tally::default();
        let doc = match C::parse(&c.map, &c.raw.text, &c.id, &mut scratch, run.today) {
            Ok(d) => d,
            Err(reason) => {
                run.reject(C::NAME, &c.raw, Some(&c.id), None, &reason)?;
                out.rejected += 1;
                continue;
            }
        };
        let dropped = C::item_rejects(&doc);
        let mut rows = Rows::default();
        run.sealer.begin_document();
        match C::build(doc, &c.id, refs, &mut run.sealer, &mut rows) {
            Ok(()) => {}
            Err(Fail::Reject(reason)) => {
                run.sealer.discard_document();
                run.reject(C::NAME, &c.raw, Some(&c.id), None, &reason)?;
                out.rejected += 1;
                continue;
            }
            Err(Fail::Crypto(e)) => return Err(anyhow::Error::from(e).context("sealing")),
        }
        sqlx::query("SAVEPOINT import_doc").execute(&mut *conn).await.map_err(dbe)?;
        match write::insert(conn, run.org, &run.source, &rows).await {
            Ok(counts) => {
                sqlx::query("RELEASE SAVEPOINT import_doc").execute(&mut *conn).await.map_err(dbe)?;
                run.sealer.accept();
                add(&mut run.report.rows_written, &counts);
                add(&mut run.expected, &expected);
                out.items_rejected += write_item_rejects::<C>(run, &c, dropped)?;
                present_ids.push(c.id);
                out.imported += 1;
            }
            Err(e) if is_connection(&e) => return Err(dbe(e)),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_doc").execute(&mut *conn).await.map_err(dbe)?;
                run.sealer.discard_batch();
                run.reject(C::NAME, &c.raw, Some(&c.id), None, &Reason::from_db(&e))?;
                out.rejected += 1;
            }
        }
    }
    Ok(())
}

/// Parses a document: its `_id` whenever it can be read (it claims the id even if the
/// document is then refused), and the document or why it is refused.
pub fn decode(raw: &RawLine) -> (Option<String>, Result<serde_json::Map<String, Value>, Reason>) {
    if let Some(why) = &raw.unreadable {
        let reason = match why {
            Unreadable::Utf8 { byte } => Reason::InvalidUtf8 { byte: *byte },
            Unreadable::TooLong => Reason::TooLong { max_bytes: super::source::MAX_DOCUMENT },
            Unreadable::AfterArray => Reason::ArrayStructure("has text after its closing ]"),
            Unreadable::UnclosedArray => Reason::ArrayStructure("ends without its closing ] or inside a document"),
        };
        return (None, Err(reason));
    }
    let value: Value = match serde_json::from_str(&raw.text) {
        Ok(v) => v,
        Err(e) => return (None, Err(json_error(&e))),
    };
    let Value::Object(map) = value else { return (None, Err(Reason::NotADocument)) };
    let id = match map.get("_id") {
        None | Some(Value::Null) => return (None, Err(Reason::MissingField("_id".into()))),
        Some(v) => match ejson::oid(v) {
            Ok(id) => id,
            Err(p) => return (None, Err(super::fields::invalid("_id".into(), p))),
        },
    };
    // NUL can only reach a parsed string through the `\u0000` escape: look for it first.
    if raw.text.contains("\\u0000")
        && let Some(field) = nul_path(&map, "")
    {
        return (Some(id), Err(Reason::NulCharacter { field }));
    }
    (Some(id), Ok(map))
}

fn json_error(e: &serde_json::Error) -> Reason {
    let text = e.to_string();
    if text.starts_with("recursion limit exceeded") {
        return Reason::TooDeep { max: MAX_DEPTH };
    }
    // serde_json describes the syntax problem, then " at line L column C": keep the former.
    let what = text.rsplit_once(" at line ").map_or(text.as_str(), |(w, _)| w).to_owned();
    Reason::MalformedJson { line: e.line(), column: e.column(), what }
}

/// The path of the first key or string value holding a NUL character.
fn nul_path(map: &serde_json::Map<String, Value>, prefix: &str) -> Option<String> {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    for (k, v) in map {
        if k.contains('\0') {
            return Some(join("(a key)"));
        }
        if let Some(p) = nul_in(v, &join(k)) {
            return Some(p);
        }
    }
    None
}

fn nul_in(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Object(m) => nul_path(m, path),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| nul_in(x, &format!("{path}[{i}]"))),
        _ => None,
    }
}

pub fn add(into: &mut TableCounts, from: &TableCounts) {
    for (t, n) in from {
        *into.entry(t).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawLine {
        RawLine { line: 7, index: 3, text: text.to_owned(), bytes: None, unreadable: None }
    }

    #[test]
    fn a_nul_is_named_by_field_and_the_id_still_claimed() {
        let (id, r) = decode(&raw(r#"{"_id":{"$oid":"5f1d7a2b3c4d5e6f7a8b9c0d"},"a":{"b":["x","y\u0000z"]}}"#));
        assert_eq!(id.as_deref(), Some("5f1d7a2b3c4d5e6f7a8b9c0d"));
        assert_eq!(r.unwrap_err(), Reason::NulCharacter { field: "a.b[1]".into() });
    }

    #[test]
    fn depth_and_syntax_errors_say_what_without_values() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(decode(&raw(&deep)).1.unwrap_err(), Reason::TooDeep { max: 128 });
        let err = decode(&raw(r#"{"_id": "secret-value" "x"}"#)).1.unwrap_err();
        let Reason::MalformedJson { line, column, what } = &err else { panic!("{err:?}") };
        assert_eq!((*line, *column), (1, 24));
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(what.contains("expected"), "{what}");
    }
}
