//! Cursor pagination. Every list is ordered by `(created_at, id)` — unique, so the order is
//! total and deterministic — and the cursor is the last row's key, opaque to clients
//! (base64url of `micros:uuid`). Keyset pagination: no OFFSET, stable under inserts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ClinicalError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub after_ts: Option<DateTime<Utc>>,
    pub after_id: Option<Uuid>,
}

impl Page {
    pub fn parse(q: &PageQuery) -> Result<Self, ClinicalError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ClinicalError::validation("limit", "must be between 1 and 100"));
        }
        let (after_ts, after_id) = match q.cursor.as_deref() {
            None | Some("") => (None, None),
            Some(c) => {
                let (ts, id) = decode(c)
                    .ok_or_else(|| ClinicalError::validation("cursor", "must be a cursor from a previous page"))?;
                (Some(ts), Some(id))
            }
        };
        Ok(Self { limit, after_ts, after_id })
    }

    /// What to pass as SQL LIMIT: one more than asked, to learn whether a next page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the extra row and builds the response; `key` gives a row's `(created_at, id)`.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> List<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit.max(0) as usize);
        let next_cursor = if more { rows.last().map(|r| encode(key(r))) } else { None };
        List { items: rows, next_cursor }
    }
}

/// `{"items": [...], "next_cursor": "…" | null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> List<U> {
        List { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

pub fn encode((ts, id): (DateTime<Utc>, Uuid)) -> String {
    B64.encode(format!("{}:{}", ts.timestamp_micros(), id))
}

fn decode(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(B64.decode(cursor).ok()?).ok()?;
    let (micros, id) = raw.split_once(':')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursor_round_trips_and_garbage_is_a_422() {
        let ts = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let c = encode((ts, id));
        let q = PageQuery { limit: Some(10), cursor: Some(c) };
        let p = Page::parse(&q).unwrap();
        assert_eq!((p.after_ts, p.after_id), (Some(ts), Some(id)));
        for bad in ["x", "!!!", &B64.encode("12:not-a-uuid")] {
            let q = PageQuery { limit: None, cursor: Some(bad.to_string()) };
            assert!(matches!(Page::parse(&q), Err(ClinicalError::Validation { .. })));
        }
        for limit in [0, 101, -1] {
            assert!(Page::parse(&PageQuery { limit: Some(limit), cursor: None }).is_err());
        }
    }

    #[test]
    fn finish_sets_next_cursor_only_when_more_rows_exist() {
        let p = Page::parse(&PageQuery { limit: Some(2), cursor: None }).unwrap();
        let t = Utc::now();
        let rows: Vec<(DateTime<Utc>, Uuid)> = (0..3).map(|_| (t, Uuid::new_v4())).collect();
        let l = p.finish(rows.clone(), |r| *r);
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.next_cursor, Some(encode(rows[1])));
        let l = p.finish(rows[..2].to_vec(), |r| *r);
        assert!(l.next_cursor.is_none());
    }
}
