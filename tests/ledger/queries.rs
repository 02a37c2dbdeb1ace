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

/// The console's newest-first pages: every filter, paged by cursor, returns exactly the rows
/// of the caller's ledger the filter selects, in (occurred_at, seq) order, whatever the index
/// or branch (patient alone, patient among several) that found them.
#[tokio::test]
async fn console_pages_by_time_match_every_filter() {
    use custos::audit::Outcome;
    use custos::audit::query::{TimeCursor, list_events_by_time};
    use custos::audit::store::LogRow;

    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    // 40 more events in org A's ledger (written as the superuser, as a bench would): one is
    // dated before all others (an imported entry), so time order is not index order.
    sqlx::query(
        "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, actor_id, actor_role, action, \
           resource_type, resource_ids, patient_id, patient_ids, outcome, break_glass, imported, leaf_hash, chain_hash) \
         SELECT $1, i, gen_random_uuid(), \
                CASE WHEN i = 139 THEN '2001-01-01'::timestamptz ELSE now() + make_interval(mins => i) END, \
                $1, CASE WHEN i % 3 = 0 THEN $2 ELSE $3 END, 'clinician', \
                (CASE WHEN i % 4 = 0 THEN 'export' ELSE 'read' END)::audit_action, 'patient', '{}', \
                CASE WHEN i % 2 = 0 THEN $4 END, \
                CASE WHEN i % 5 = 1 THEN ARRAY[$4, $5]::uuid[] ELSE '{}' END, \
                (CASE WHEN i % 7 = 0 THEN 'denied' ELSE 'success' END)::audit_outcome, i = 113, i = 139, \
                sha256(int8send(i)), sha256(int8send(i)) \
         FROM generate_series(100, 139) i",
    )
    .bind(w.org_a)
    .bind(w.aa)
    .bind(w.ca1)
    .bind(w.p1)
    .bind(w.p2)
    .execute(&db.pool)
    .await
    .unwrap();

    let mut tx = custos::db::begin(&db.pool, &w.claims(w.ua)).await.unwrap();
    let everything =
        list_events(&mut tx, w.org_a, &EventFilter { limit: 1000, ..EventFilter::default() }).await.unwrap();
    assert_eq!(everything.len(), 43);
    let mid = everything.iter().find(|r| r.seq == 120).unwrap().event.occurred_at;
    type Wanted<'a> = Box<dyn Fn(&LogRow) -> bool + 'a>;
    let filters: Vec<(&str, EventFilter, Wanted)> = vec![
        ("none", EventFilter::default(), Box::new(|_| true)),
        (
            "patient p1",
            EventFilter { patient: Some(w.p1), ..Default::default() },
            Box::new(|r| r.event.patient_id == Some(w.p1) || r.event.patient_ids.contains(&w.p1)),
        ),
        (
            "patient p2",
            EventFilter { patient: Some(w.p2), ..Default::default() },
            Box::new(|r| r.event.patient_id == Some(w.p2) || r.event.patient_ids.contains(&w.p2)),
        ),
        (
            "actor",
            EventFilter { actor: Some(w.aa), ..Default::default() },
            Box::new(|r| r.event.actor_id == Some(w.aa)),
        ),
        (
            "action",
            EventFilter { action: Some(Action::Export), ..Default::default() },
            Box::new(|r| r.event.action == "export"),
        ),
        (
            "outcome",
            EventFilter { outcome: Some(Outcome::Denied), ..Default::default() },
            Box::new(|r| r.event.outcome == "denied"),
        ),
        (
            "break-glass",
            EventFilter { break_glass: Some(true), ..Default::default() },
            Box::new(|r| r.event.break_glass),
        ),
        (
            "time range + patient",
            EventFilter { from: Some(mid), patient: Some(w.p1), ..Default::default() },
            Box::new(move |r| {
                r.event.occurred_at >= mid && (r.event.patient_id == Some(w.p1) || r.event.patient_ids.contains(&w.p1))
            }),
        ),
    ];
    for (name, f, wanted) in filters {
        let mut expected: Vec<&LogRow> = everything.iter().filter(|r| wanted(r)).collect();
        expected.sort_by_key(|r| std::cmp::Reverse((r.event.occurred_at, r.seq)));
        let expected: Vec<i64> = expected.iter().map(|r| r.seq).collect();
        assert!(!expected.is_empty(), "{name}: the data must exercise the filter");
        let (mut got, mut before) = (Vec::new(), None);
        loop {
            let page =
                list_events_by_time(&mut tx, w.org_a, &EventFilter { limit: 4, ..f.clone() }, before).await.unwrap();
            got.extend(page.iter().map(|r| r.seq));
            match page.last() {
                Some(last) if page.len() == 4 => {
                    let c = TimeCursor::of(last);
                    assert_eq!(TimeCursor::parse(&c.encode()), Some(c));
                    before = Some(c);
                }
                _ => break,
            }
        }
        assert_eq!(got, expected, "{name}");
    }
    assert!(
        list_events_by_time(&mut tx, w.org_b, &EventFilter { limit: 10, ..Default::default() }, None)
            .await
            .unwrap()
            .is_empty()
    );
    tx.rollback().await.unwrap();

    // The patient-list look-up answers only a ledger's own auditors and admins.
    for who in [w.ca1, w.pa1] {
        let mut tx = custos::db::begin(&db.pool, &w.claims(who)).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM custos.events_among_patients($1, $2)")
            .bind(w.org_a)
            .bind(w.p1)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0);
        tx.rollback().await.unwrap();
    }
    let mut tx = custos::db::begin(&db.pool, &w.claims(w.ua)).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM custos.events_among_patients($1, $2)")
        .bind(w.org_b)
        .bind(w.p1)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0, "another organization's ledger");
    tx.rollback().await.unwrap();
    assert_eq!(TimeCursor::parse("12.x"), None);
    assert_eq!(TimeCursor::parse("12.-1"), None);
}

/// Under RLS an enum condition is no index condition; the console's action and outcome
/// filters rely on one partial index per value (migrations/20261202150001_console_event_indexes.sql).
#[tokio::test]
async fn every_action_and_outcome_has_its_console_index() {
    let db = TestDb::new().await;
    for (column, ty) in [("action", "audit_action"), ("outcome", "audit_outcome")] {
        let missing: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT v::text FROM unnest(enum_range(NULL::{ty})) v WHERE NOT EXISTS ( \
               SELECT 1 FROM pg_indexes WHERE tablename = 'audit_log' \
                 AND indexdef LIKE 'CREATE INDEX % ON public.audit_log USING btree (ledger_id, occurred_at, seq) WHERE ({column} = ''' || v::text || '''::{ty})')"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert!(missing.is_empty(), "{column} values without a console index: {missing:?}");
    }
}
