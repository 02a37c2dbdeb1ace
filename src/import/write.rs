//! Bulk inserts: one `INSERT … SELECT FROM UNNEST(…)` per table per batch, parameterized,
//! inside the batch's transaction (running as `custos_app` with `system` claims, so the RLS
//! policies apply to the import like to any other writer). Enum columns travel as text and
//! are cast by PostgreSQL, so an unknown label is a constraint error, not a silent default.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::rows::Rows;

/// Rows written per target table.
pub type TableCounts = BTreeMap<&'static str, u64>;

/// Inserts every non-empty table of `rows`, parents first; returns rows written per table.
pub async fn insert(conn: &mut PgConnection, org: Uuid, source: &str, rows: &Rows) -> Result<TableCounts, sqlx::Error> {
    let mut n = TableCounts::new();
    if !rows.users.is_empty() {
        let r = &rows.users;
        let q = sqlx::query(
            "INSERT INTO users (id, org_id, role, email_enc, email_bidx, display_name_enc, password_hash, status, \
             created_at, updated_at, password_changed_at) \
             SELECT t.id, $1, t.role::user_role, t.email_enc, t.email_bidx, t.dn, t.ph, t.status::user_status, \
             t.created_at, t.created_at, t.created_at \
             FROM UNNEST($2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::text[], $8::text[], \
             $9::timestamptz[]) AS t(id, role, email_enc, email_bidx, dn, ph, status, created_at)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.role)
        .bind(&r.email_enc)
        .bind(&r.email_bidx)
        .bind(&r.display_name_enc)
        .bind(&r.password_hash)
        .bind(&r.status)
        .bind(&r.created_at);
        n.insert("users", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.patients.is_empty() {
        let r = &rows.patients;
        let q = sqlx::query(
            "INSERT INTO patients (id, org_id, user_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, \
             birth_date_enc, sex, ssn_enc, phone_enc, address_enc, email_enc, email_bidx, created_at, updated_at) \
             SELECT t.id, $1, t.user_id, t.mrn_enc, t.mrn_bidx, t.gn, t.fn, t.bd, t.sex::sex, t.ssn, t.phone, \
             t.addr, t.email_enc, t.email_bidx, t.created_at, t.created_at \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[], \
             $9::text[], $10::bytea[], $11::bytea[], $12::bytea[], $13::timestamptz[], $14::bytea[], $15::bytea[]) \
             AS t(id, user_id, mrn_enc, mrn_bidx, gn, fn, bd, sex, ssn, phone, addr, created_at, email_enc, email_bidx)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.user_id)
        .bind(&r.mrn_enc)
        .bind(&r.mrn_bidx)
        .bind(&r.given_name_enc)
        .bind(&r.family_name_enc)
        .bind(&r.birth_date_enc)
        .bind(&r.sex)
        .bind(&r.ssn_enc)
        .bind(&r.phone_enc)
        .bind(&r.address_enc)
        .bind(&r.created_at)
        .bind(&r.email_enc)
        .bind(&r.email_bidx);
        n.insert("patients", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.medical_info.is_empty() {
        let r = &rows.medical_info;
        let q = sqlx::query(
            "INSERT INTO patient_medical_info (id, org_id, patient_id, blood_type, height_cm, weight_kg, \
             emergency_contact_enc) \
             SELECT t.id, $1, t.pid, t.bt::blood_type, t.h::numeric(5,1), t.w::numeric(5,1), t.ec \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::float8[], $6::float8[], $7::bytea[]) \
             AS t(id, pid, bt, h, w, ec)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.blood_type)
        .bind(&r.height_cm)
        .bind(&r.weight_kg)
        .bind(&r.emergency_contact_enc);
        n.insert("patient_medical_info", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.allergies.is_empty() {
        let r = &rows.allergies;
        let q = sqlx::query(
            "INSERT INTO allergies (id, org_id, patient_id, substance, reaction_enc, severity, status, created_at, \
             updated_at) \
             SELECT t.id, $1, t.pid, t.s, t.r, t.sev::allergy_severity, t.st::record_status, t.c, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::bytea[], $6::text[], $7::text[], \
             $8::timestamptz[]) AS t(id, pid, s, r, sev, st, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.substance)
        .bind(&r.reaction_enc)
        .bind(&r.severity)
        .bind(&r.status)
        .bind(&r.created_at);
        n.insert("allergies", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.medications.is_empty() {
        let r = &rows.medications;
        let q = sqlx::query(
            "INSERT INTO medications (id, org_id, patient_id, name, dose, unit, route, frequency, start_date, \
             end_date, status, notes_enc, created_at, updated_at) \
             SELECT t.id, $1, t.pid, t.name, t.dose::numeric(12,4), t.unit, t.route::medication_route, t.freq, \
             t.sd, t.ed, t.st::medication_status, t.notes, t.c, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::float8[], $6::text[], $7::text[], $8::text[], \
             $9::date[], $10::date[], $11::text[], $12::bytea[], $13::timestamptz[]) \
             AS t(id, pid, name, dose, unit, route, freq, sd, ed, st, notes, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.name)
        .bind(&r.dose)
        .bind(&r.unit)
        .bind(&r.route)
        .bind(&r.frequency)
        .bind(&r.start_date)
        .bind(&r.end_date)
        .bind(&r.status)
        .bind(&r.notes_enc)
        .bind(&r.created_at);
        n.insert("medications", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.history.is_empty() {
        let r = &rows.history;
        let q = sqlx::query(
            "INSERT INTO medical_history (id, org_id, patient_id, icd10_code, description, diagnosed_on, \
             resolved_on, notes_enc, created_at, updated_at) \
             SELECT t.id, $1, t.pid, t.code, t.descr, t.dx, t.res, t.notes, t.c, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::date[], $7::date[], $8::bytea[], \
             $9::timestamptz[]) AS t(id, pid, code, descr, dx, res, notes, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.icd10_code)
        .bind(&r.description)
        .bind(&r.diagnosed_on)
        .bind(&r.resolved_on)
        .bind(&r.notes_enc)
        .bind(&r.created_at);
        n.insert("medical_history", q.execute(&mut *conn).await?.rows_affected());
    }
    super::write_cases::insert(conn, org, rows, &mut n).await?;
    if !rows.map.is_empty() {
        let r = &rows.map;
        let q = sqlx::query(
            "INSERT INTO legacy_id_map (org_id, source, collection, legacy_id, new_id) \
             SELECT $1, $2, t.coll, t.lid, t.nid FROM UNNEST($3::text[], $4::text[], $5::uuid[]) AS t(coll, lid, nid)",
        )
        .bind(org)
        .bind(source)
        .bind(&r.collection)
        .bind(&r.legacy_id)
        .bind(&r.new_id);
        n.insert("legacy_id_map", q.execute(&mut *conn).await?.rows_affected());
    }
    Ok(n)
}
