//! Event listings and access reports as the app role: RLS and the filters together decide
//! what each kind of caller sees (the HTTP handlers are thin wrappers over these).

use custos::audit::Action;
use custos::audit::query::{EventFilter, access_report, list_events, patient_visible};

use crate::common::TestDb;
use crate::fixture;

#[tokio::test]
async fn listings_and_access_reports_follow_rls() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let all = EventFilter { limit: 100, ..EventFilter::default() };
    let seqs = |rows: &[custos::audit::store::LogRow]| rows.iter().map(|r| r.seq).collect::<Vec<_>>();

    // Admins and auditors: their own organization's ledger, filtered and paginated.
    for who in [w.aa, w.ua] {
        let mut tx = custos::db::begin(&db.pool, &w.claims(who)).await.unwrap();
        assert_eq!(seqs(&list_events(&mut tx, w.org_a, &all).await.unwrap()), vec![0, 1, 2]);
        assert!(list_events(&mut tx, w.org_b, &all).await.unwrap().is_empty(), "another org's ledger");
        let by_patient = EventFilter { patient: Some(w.p2), ..all.clone() };
        assert_eq!(seqs(&list_events(&mut tx, w.org_a, &by_patient).await.unwrap()), vec![1]);
        let by_actor = EventFilter { actor: Some(w.aa), ..all.clone() };
        assert_eq!(seqs(&list_events(&mut tx, w.org_a, &by_actor).await.unwrap()), vec![2]);
        let page = EventFilter { after: Some(0), limit: 1, ..all.clone() };
        assert_eq!(seqs(&list_events(&mut tx, w.org_a, &page).await.unwrap()), vec![1]);
        let none = EventFilter { action: Some(Action::Delete), ..all.clone() };
        assert!(list_events(&mut tx, w.org_a, &none).await.unwrap().is_empty());
        tx.rollback().await.unwrap();
    }
    // Clinicians read no ledger.
    let mut tx = custos::db::begin(&db.pool, &w.claims(w.ca1)).await.unwrap();
    assert!(list_events(&mut tx, w.org_a, &all).await.unwrap().is_empty());
    tx.rollback().await.unwrap();

    // A patient: their own record's accesses only.
    let mut tx = custos::db::begin(&db.pool, &w.claims(w.pa1)).await.unwrap();
    assert!(patient_visible(&mut tx, w.p1).await.unwrap().is_some());
    assert!(patient_visible(&mut tx, w.p2).await.unwrap().is_none());
    assert_eq!(seqs(&access_report(&mut tx, w.org_a, w.p1, None, None, 100).await.unwrap()), vec![0]);
    assert!(access_report(&mut tx, w.org_a, w.p2, None, None, 100).await.unwrap().is_empty());
    assert_eq!(seqs(&list_events(&mut tx, w.org_a, &all).await.unwrap()), vec![0], "only events about them");
    tx.rollback().await.unwrap();
}
