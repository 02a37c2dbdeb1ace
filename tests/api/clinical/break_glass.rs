//! Break-glass that means something (issue 19): a reason must carry words; one live grant per
//! clinician and patient (asking again renews it, recorded); a per-clinician daily limit; the
//! reason sealed at rest, the ledger carrying a commitment to it; auditors read it through an
//! audited route; the patient's access report shows it. Every attempt leaves its event.

use reqwest::StatusCode;
use serde_json::json;

use super::world::{self, call, events};
use crate::common::spawn_app_with;

const REASON: &str = "patient unconscious in the emergency department";

#[tokio::test]
async fn wordless_reasons_are_refused_and_recorded() {
    let app = spawn_app_with(&[]).await;
    let w = world::build(&app).await;
    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    for reason in ["a".repeat(20), "\u{200b}".repeat(20), "\u{301}".repeat(20), format!("ab{}", "\u{301}".repeat(20))] {
        let (s, e) = call(&app, "POST", &bg, &w.ca2, Some(json!({ "reason": reason }))).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
            "{reason:?}: {e}"
        );
    }
    let ev = events(&app, w.ca2.id).await;
    assert_eq!(ev.iter().filter(|e| e.0 == "break_glass" && e.2 == "denied").count(), 4, "{ev:?}");
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM break_glass_grants").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(live, 0);
}

#[tokio::test]
async fn one_live_grant_per_patient_a_daily_limit_and_a_sealed_reason() {
    let app = spawn_app_with(&[("CUSTOS_BREAK_GLASS_DAILY_LIMIT", "1")]).await;
    let w = world::build(&app).await;
    let bg = |p| format!("/v1/patients/{p}/break-glass");
    let (s, first) = call(&app, "POST", &bg(w.p1), &w.ca2, Some(json!({ "reason": REASON }))).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert!(first["renewed"].is_null());
    // Asking again renews: still exactly one live grant, the renewal recorded.
    for _ in 0..3 {
        let (s, again) = call(&app, "POST", &bg(w.p1), &w.ca2, Some(json!({ "reason": REASON }))).await;
        assert_eq!(s, StatusCode::CREATED, "{again}");
        assert!(again["renewed"].is_string(), "{again}");
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM break_glass_grants WHERE revoked_at IS NULL AND expires_at > now() AND clinician_id = $1",
    )
    .bind(w.ca2.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(live, 1, "one live grant per clinician and patient");
    let ev = events(&app, w.ca2.id).await;
    assert_eq!(ev.iter().filter(|e| e.4.as_deref().is_some_and(|r| r.contains("(renews grant "))).count(), 3);
    // The daily limit (1 patient here): another patient is refused, and the refusal recorded.
    let (s, e) = call(&app, "POST", &bg(w.p2), &w.ca2, Some(json!({ "reason": REASON }))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("break_glass_daily_limit")), "{e}");
    let ev = events(&app, w.ca2.id).await;
    assert!(
        ev.iter().any(|e| e.0 == "break_glass"
            && e.2 == "denied"
            && e.4.as_deref().is_some_and(|r| r.contains("break_glass_daily_limit"))),
        "{ev:?}"
    );

    // An admin lifts the limit (recorded); then the other patient is allowed. Nobody else may.
    let lift = json!({ "clinician_id": w.ca2.id, "extra": 1 });
    for who in [&w.ca2, &w.ua, &w.pa1] {
        let (s, _) = call(&app, "POST", "/v1/break-glass/allowances", who, Some(lift.clone())).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{} lifting the limit", who.name);
    }
    // Another organization's admin: not a clinician of theirs (as for an unknown id).
    let (s, e) = call(&app, "POST", "/v1/break-glass/allowances", &w.ab, Some(lift.clone())).await;
    assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("clinician_id")));
    let (s, a) = call(&app, "POST", "/v1/break-glass/allowances", &w.aa, Some(lift)).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert!(events(&app, w.aa.id).await.iter().any(|e| e.1 == "break_glass_allowance" && e.2 == "success"));
    let (s, e) = call(&app, "POST", &bg(w.p2), &w.ca2, Some(json!({ "reason": REASON }))).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");

    // Sealed at rest; the ledger (inbox and log) never holds the text, only a commitment.
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM break_glass_grants WHERE reason IS NOT NULL OR position($1::bytea IN reason_enc) > 0",
    )
    .bind(REASON.as_bytes())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(plain, 0);
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM audit_inbox WHERE reason LIKE '%' || $1 || '%') \
              + (SELECT count(*) FROM audit_log WHERE reason LIKE '%' || $1 || '%')",
    )
    .bind(REASON)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "no reason text in the ledger");
    // Reads under the grant are flagged with the grant and the commitment.
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca2, None).await.0, StatusCode::OK);
    let grant = first["id"].as_str().unwrap();
    let ev = events(&app, w.ca2.id).await;
    let read = ev.iter().rev().find(|e| e.0 == "read").unwrap();
    assert!(read.3 && read.4.as_deref().is_some_and(|r| r.starts_with("break-glass grant ")), "{read:?}");

    // Auditors (and admins) read the reason through an audited route, which checks it against
    // the commitment; nobody else does.
    let path = format!("/v1/break-glass/{grant}/reason");
    let (s, r) = call(&app, "GET", &path, &w.ua, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["reason"].as_str(), r["commitment_matches"].as_bool()), (Some(REASON), Some(true)), "{r}");
    assert!(events(&app, w.ua.id).await.iter().any(|e| e.1 == "break_glass_reason" && e.2 == "success"));
    for who in [&w.ca2, &w.ca1, &w.pa1, &w.ab] {
        assert_eq!(call(&app, "GET", &path, who, None).await.0, StatusCode::NOT_FOUND, "{}", who.name);
    }
    assert_eq!(call(&app, "GET", &path, &w.aa, None).await.0, StatusCode::OK);

    // The patient's access report shows why (the purpose of a disclosure of their record).
    crate::audit::drain(&app).await;
    let (s, report) = call(&app, "GET", &format!("/v1/patients/{}/access-report?limit=1000", w.p1), &w.pa1, None).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let lines: Vec<_> =
        report["items"].as_array().unwrap().iter().filter(|i| i["break_glass"] == true).cloned().collect();
    assert!(!lines.is_empty() && lines.iter().all(|i| i["reason"] == REASON), "{report}");
}
