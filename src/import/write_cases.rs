//! Bulk inserts for the case flow (conversations and what hangs off them), prescriptions,
//! care teams and imported audit events. See [`super::write`].

use sqlx::PgConnection;
use uuid::Uuid;

use super::rows::Rows;
use super::write::TableCounts;

pub async fn insert(conn: &mut PgConnection, org: Uuid, rows: &Rows, n: &mut TableCounts) -> Result<(), sqlx::Error> {
    if !rows.conversations.is_empty() {
        let r = &rows.conversations;
        let q = sqlx::query(
            "INSERT INTO conversations (id, org_id, patient_id, subject_enc, status, assigned_clinician_id, \
             opened_by, closed_at, created_at, updated_at) \
             SELECT t.id, $1, t.pid, t.subj, t.st::conversation_status, t.doc, t.ob, t.ca, t.c, t.u \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::bytea[], $5::text[], $6::uuid[], $7::uuid[], \
             $8::timestamptz[], $9::timestamptz[], $10::timestamptz[]) AS t(id, pid, subj, st, doc, ob, ca, c, u)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.subject_enc)
        .bind(&r.status)
        .bind(&r.assigned_clinician_id)
        .bind(&r.opened_by)
        .bind(&r.closed_at)
        .bind(&r.created_at)
        .bind(&r.updated_at);
        n.insert("conversations", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.care_team.is_empty() {
        let r = &rows.care_team;
        // The same doctor–patient pair comes from many conversations and from earlier runs.
        let q = sqlx::query(
            "INSERT INTO care_team_members (org_id, patient_id, clinician_id) \
             SELECT $1, t.pid, t.cid FROM UNNEST($2::uuid[], $3::uuid[]) AS t(pid, cid) \
             ON CONFLICT (patient_id, clinician_id) DO NOTHING",
        )
        .bind(org)
        .bind(&r.patient_id)
        .bind(&r.clinician_id);
        n.insert("care_team_members", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.messages.is_empty() {
        let r = &rows.messages;
        let q = sqlx::query(
            "INSERT INTO messages (id, org_id, conversation_id, patient_id, sender_id, body_enc, created_at) \
             SELECT t.id, $1, t.cid, t.pid, t.sid, t.body, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bytea[], $7::timestamptz[]) \
             AS t(id, cid, pid, sid, body, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.conversation_id)
        .bind(&r.patient_id)
        .bind(&r.sender_id)
        .bind(&r.body_enc)
        .bind(&r.created_at);
        n.insert("messages", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.symptoms.is_empty() {
        let r = &rows.symptoms;
        let q = sqlx::query(
            "INSERT INTO symptoms (id, org_id, conversation_id, patient_id, name, severity, onset, created_at) \
             SELECT t.id, $1, t.cid, t.pid, t.name, t.sev, t.onset, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int2[], $7::date[], \
             $8::timestamptz[]) AS t(id, cid, pid, name, sev, onset, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.conversation_id)
        .bind(&r.patient_id)
        .bind(&r.name)
        .bind(&r.severity)
        .bind(&r.onset)
        .bind(&r.created_at);
        n.insert("symptoms", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.attachments.is_empty() {
        let r = &rows.attachments;
        let q = sqlx::query(
            "INSERT INTO attachments (id, org_id, patient_id, conversation_id, uploaded_by, filename_enc, \
             content_type, size_bytes, sha256, content_enc, created_at) \
             SELECT t.id, $1, t.pid, t.cid, t.ub, t.fname, t.ct, t.size, t.sha, t.content, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bytea[], $7::text[], $8::int8[], \
             $9::bytea[], $10::bytea[], $11::timestamptz[]) AS t(id, pid, cid, ub, fname, ct, size, sha, content, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.conversation_id)
        .bind(&r.uploaded_by)
        .bind(&r.filename_enc)
        .bind(&r.content_type)
        .bind(&r.size_bytes)
        .bind(&r.sha256)
        .bind(&r.content_enc)
        .bind(&r.created_at);
        n.insert("attachments", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.prescriptions.is_empty() {
        let r = &rows.prescriptions;
        let q = sqlx::query(
            "INSERT INTO prescriptions (id, org_id, patient_id, prescriber_id, medication, dose, quantity, \
             refills_allowed, refills_used, instructions_enc, issued_at, expires_at, status, cancelled_at, \
             cancel_reason_enc, created_at, updated_at) \
             SELECT t.id, $1, t.pid, t.doc, t.med, t.dose, t.qty, t.ra, t.ru, t.instr, t.ia, t.ea, \
             t.st::prescription_status, t.ca, t.cr, t.c, t.c \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int4[], $8::int2[], \
             $9::int2[], $10::bytea[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::timestamptz[], \
             $15::bytea[], $16::timestamptz[]) AS t(id, pid, doc, med, dose, qty, ra, ru, instr, ia, ea, st, ca, cr, c)",
        )
        .bind(org)
        .bind(&r.id)
        .bind(&r.patient_id)
        .bind(&r.prescriber_id)
        .bind(&r.medication)
        .bind(&r.dose)
        .bind(&r.quantity)
        .bind(&r.refills_allowed)
        .bind(&r.refills_used)
        .bind(&r.instructions_enc)
        .bind(&r.issued_at)
        .bind(&r.expires_at)
        .bind(&r.status)
        .bind(&r.cancelled_at)
        .bind(&r.cancel_reason_enc)
        .bind(&r.created_at);
        n.insert("prescriptions", q.execute(&mut *conn).await?.rows_affected());
    }
    if !rows.audit.is_empty() {
        let r = &rows.audit;
        // Same columns as audit::record, many at once; ORDER BY ord keeps the inbox identity
        // (which the sequencer follows) in the source order of the activity log.
        let q = sqlx::query(
            "INSERT INTO audit_inbox (event_id, occurred_at, org_id, actor_id, actor_role, action, resource_type, \
             resource_ids, patient_id, outcome, client_ip, user_agent, reason, imported) \
             SELECT t.eid, t.at, $1, t.actor, t.role, t.act::audit_action, t.rt, \
             CASE WHEN t.rid IS NULL THEN '{}'::text[] ELSE ARRAY[t.rid] END, t.pid, t.outc::audit_outcome, \
             t.ip::inet, t.ua, t.reason, true \
             FROM UNNEST($2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[]) WITH ORDINALITY \
             AS t(eid, at, actor, role, act, rt, rid, pid, outc, ip, ua, reason, ord) ORDER BY t.ord",
        )
        .bind(org)
        .bind(&r.event_id)
        .bind(&r.occurred_at)
        .bind(&r.actor_id)
        .bind(&r.actor_role)
        .bind(&r.action)
        .bind(&r.resource_type)
        .bind(&r.resource_id)
        .bind(&r.patient_id)
        .bind(&r.outcome)
        .bind(&r.client_ip)
        .bind(&r.user_agent)
        .bind(&r.reason);
        n.insert("audit_inbox", q.execute(&mut *conn).await?.rows_affected());
    }
    Ok(())
}
