//! The outbox (issue 19, policies/37_invites_outbox.sql): staff enqueue a message for an
//! invite they issued and can then read, change or delete nothing in the outbox — not even
//! their own message; only the sender's service claim (`outbox`) takes messages.

use custos::db::Claims;
use uuid::Uuid;

use crate::common::TestDb;
use crate::fixture;
use crate::rls_matrix::count;
use crate::rls_writes::{Outcome, attempt};

const ENQUEUE: &str = "INSERT INTO outbox_messages (id, org_id, kind, invite_id, patient_id, created_by, \
     recipient_enc, body_enc) VALUES (gen_random_uuid(), $1, 'patient_invite', $2, $3, $4, '\\x01', '\\x02')";
const TOUCH: &str = "UPDATE outbox_messages SET attempts = attempts + 1, next_attempt_at = now()";
const TAKE: &str = "DELETE FROM outbox_messages";

#[tokio::test]
async fn staff_enqueue_but_never_read_change_or_delete_the_outbox() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    // P1's invite, issued by ca1 (the fixture), with its message, as the superuser.
    let invite: Uuid = sqlx::query_scalar("SELECT id FROM patient_invites WHERE patient_id = $1 AND created_by = $2")
        .bind(w.p1)
        .bind(w.ca1)
        .fetch_one(p)
        .await
        .unwrap();
    let enqueue = |who: Uuid| [w.org_a, invite, w.p1, who];
    assert_eq!(attempt(p, &w.claims(w.ca1), ENQUEUE, &enqueue(w.ca1)).await, Outcome::Ok(1), "the issuer enqueues");
    for other in [w.aa, w.ca2, w.ua, w.pa1] {
        assert_eq!(attempt(p, &w.claims(other), ENQUEUE, &enqueue(other)).await, Outcome::Denied, "{}", w.name(other));
    }
    assert_eq!(attempt(p, &w.claims(w.aa), ENQUEUE, &enqueue(w.ca1)).await, Outcome::Denied, "in another's name");
    sqlx::query(ENQUEUE).bind(w.org_a).bind(invite).bind(w.p1).bind(w.ca1).execute(p).await.unwrap();

    let mut staff: Vec<(String, Claims)> =
        w.actors().into_iter().map(|a| (w.name(a).to_owned(), w.claims(a))).collect();
    staff.push(("auth".into(), Claims::auth(None)));
    staff.push(("auth in org".into(), Claims::auth_in_org(w.org_a, None)));
    staff.push(("system".into(), Claims::system(Some(w.org_a))));
    staff.push(("anonymous".into(), Claims::anonymous(None)));
    for (name, claims) in &staff {
        assert_eq!(count(p, claims, "outbox_messages").await, 0, "{name} reads the outbox");
        assert_eq!(attempt(p, claims, TOUCH, &[]).await, Outcome::Ok(0), "{name} changes a message");
        assert_eq!(attempt(p, claims, TAKE, &[]).await, Outcome::Ok(0), "{name} deletes a message");
    }
    // The sender: all organizations, or the one it settles.
    assert_eq!(count(p, &Claims::outbox(None), "outbox_messages").await, 1);
    assert_eq!(count(p, &Claims::outbox(Some(w.org_b)), "outbox_messages").await, 0);
    assert_eq!(attempt(p, &Claims::outbox(Some(w.org_a)), TOUCH, &[]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &Claims::outbox(Some(w.org_a)), TAKE, &[]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &Claims::outbox(None), ENQUEUE, &enqueue(w.ca1)).await, Outcome::Denied, "no enqueue");
}
