//! The chart-section lists (allergies, medications, history, prescriptions): one query, one
//! page and one list for every section. A section says only what differs — its table, its
//! columns, what "active" means, its row type and how a row is opened; the keyset pagination
//! on `(created_at, id)`, the patient filter and the page's cut are written once, here.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Req, open_rows};
use crate::db::BoundQuery;

/// A chart section listed by patient.
pub(crate) trait Section {
    /// The row as selected by [`Section::COLS`].
    type Row: for<'r> sqlx::FromRow<'r, PgRow>;
    /// The row opened, as the API answers it.
    type Item;
    /// The table (a constant: never input).
    const TABLE: &'static str;
    /// The selected columns (a constant: never input).
    const COLS: &'static str;
    /// The condition a row meets to be listed with `active_only` (a constant).
    const ACTIVE: &'static str;
    /// Opens a row (its sealed fields).
    fn open(req: &Req<'_>, row: Self::Row) -> Result<Self::Item, ClinicalError>;
    /// The row's pagination key.
    fn key(item: &Self::Item) -> (DateTime<Utc>, Uuid);
}

/// The query of one page of `S` of `patient` (only active entries with `active_only`).
pub(crate) fn list_query<S: Section>(patient: Uuid, page: &Page, active_only: bool) -> BoundQuery {
    let (table, cols, active) = (S::TABLE, S::COLS, S::ACTIVE);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {cols} FROM {table} WHERE patient_id = $1 AND (NOT $2 OR ({active})) \
         AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4)) ORDER BY created_at, id LIMIT $5"
    )))
    .bind(patient)
    .bind(active_only)
    .bind(page.after_ts)
    .bind(page.after_id)
    .bind(page.fetch())
}

/// [`list_query`]'s rows, opened, as a page.
pub(crate) fn list_page<S: Section>(
    req: &Req<'_>,
    rows: &[PgRow],
    page: &Page,
) -> Result<List<S::Item>, ClinicalError> {
    Ok(page.finish(open_rows(req, rows, S::open)?, S::key))
}

/// One page of `S` of `patient`, in the request's transaction.
pub(crate) async fn list<S: Section>(
    req: &mut Req<'_>,
    patient: Uuid,
    page: &Page,
    active_only: bool,
) -> Result<List<S::Item>, ClinicalError> {
    let rows = list_query::<S>(patient, page, active_only).fetch_all(req.conn().await?).await?;
    list_page::<S>(req, &rows, page)
}
