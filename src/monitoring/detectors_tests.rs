//! Each detector's rule, on hand-built facts: one case that fires and the nearest case that
//! must not.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::monitoring::context::{PatientFlags, PatientKeys, StaffFacts};
use crate::monitoring::explain::{AccessFacts, explain};
use crate::monitoring::hours::WorkingHours;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const DOC: Uuid = Uuid::from_u128(1);
const P: Uuid = Uuid::from_u128(100);

fn t(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, h, m, 0).unwrap()
}

fn office() -> WorkingHours {
    let days: BTreeMap<String, Vec<String>> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (d.to_string(), vec!["08:00".into(), "18:00".into()]))
        .collect();
    WorkingHours::parse(&days).unwrap()
}

fn access(seq: i64, at: DateTime<Utc>) -> Access {
    use chrono::{Datelike, Timelike};
    Access {
        seq,
        at,
        actor: DOC,
        role: ActorRole::Clinician,
        break_glass: false,
        local_day: at.date_naive(),
        local_dow: at.weekday().number_from_monday() as u8,
        local_minute: (at.hour() * 60 + at.minute()) as u16,
    }
}

/// Runs `on_access` for one patient, explaining it from `ctx` as the engine does.
fn run(ctx: &OrgContext, user: &mut UserState, a: &Access, patient: Uuid) -> Vec<Hit> {
    let th = Thresholds::default();
    let facts =
        AccessFacts { at: a.at, actor: a.actor, role: a.role, resource_type: "chart", break_glass: a.break_glass };
    let why = explain(ctx, &facts, patient);
    let mut hits = Vec::new();
    on_access(ctx, &th, &mut RoleBaselines::default(), user, a, &[(patient, why)], &mut hits);
    hits
}

fn codes(h: &[Hit]) -> Vec<&'static str> {
    let mut c: Vec<_> = h.iter().map(|h| h.detector.code()).collect();
    c.dedup();
    c
}

fn on_team(ctx: &mut OrgContext, since: DateTime<Utc>) {
    ctx.care_team.insert((DOC, P), since);
}

#[test]
fn same_family_name_is_flagged_even_on_the_care_team() {
    let name = [7u8; 32];
    let mut ctx = OrgContext::default();
    ctx.staff.insert(DOC, StaffFacts { family_name: Some(name), ..Default::default() });
    ctx.patient_keys.insert(P, PatientKeys { family_name: Some(name), address: None });
    on_team(&mut ctx, t(1, 0, 0));
    let hits = run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P);
    assert_eq!(codes(&hits), ["same_family_name"]);
    assert_eq!(hits[0].explanation, Explanation::CareTeam, "explained, and still flagged");
    ctx.patient_keys.insert(P, PatientKeys { family_name: Some([8u8; 32]), address: None });
    assert!(run(&ctx, &mut UserState::default(), &access(2, t(2, 10, 0)), P).is_empty());
}

#[test]
fn same_address_compares_blind_indexes() {
    let mut ctx = OrgContext::default();
    ctx.staff.insert(DOC, StaffFacts { address: Some([3u8; 32]), ..Default::default() });
    ctx.patient_keys.insert(P, PatientKeys { family_name: None, address: Some([3u8; 32]) });
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P)), ["same_address"]);
    ctx.patient_keys.insert(P, PatientKeys { family_name: None, address: None });
    assert!(run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P).is_empty());
}

#[test]
fn self_access_through_a_staff_route_and_not_the_name_rules() {
    let mut ctx = OrgContext::default();
    ctx.staff.insert(DOC, StaffFacts { family_name: Some([1; 32]), address: None, patient: Some(P) });
    ctx.employees.insert(P, DOC);
    ctx.patient_keys.insert(P, PatientKeys { family_name: Some([1; 32]), address: None });
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P)), ["self_access"]);
    // The same person through the patient portal is their own access, not self_access.
    ctx.portal_accounts.insert(P, DOC);
    let mut a = access(2, t(2, 10, 0));
    a.role = ActorRole::Patient;
    assert!(run(&ctx, &mut UserState::default(), &a, P).is_empty());
}

#[test]
fn employee_patient_unless_a_care_relationship_explains_it() {
    let mut ctx = OrgContext::default();
    ctx.employees.insert(P, id(2));
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P)), ["employee_patient"]);
    ctx.prescribers.insert((DOC, P), t(1, 0, 0));
    assert!(run(&ctx, &mut UserState::default(), &access(2, t(2, 10, 0)), P).is_empty());
}

#[test]
fn vip_without_a_care_relationship() {
    let mut ctx = OrgContext::default();
    ctx.flags.insert(P, PatientFlags { confidential: true, deceased_on: None });
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P)), ["vip"]);
    // A relationship that began after the access does not explain it.
    on_team(&mut ctx, t(3, 0, 0));
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(2, t(2, 10, 0)), P)), ["vip"]);
    assert!(run(&ctx, &mut UserState::default(), &access(3, t(3, 10, 0)), P).is_empty());
}

#[test]
fn deceased_after_the_date_of_death_and_grace() {
    let mut ctx = OrgContext::default();
    ctx.flags.insert(P, PatientFlags { confidential: false, deceased_on: NaiveDate::from_ymd_opt(2026, 3, 1) });
    on_team(&mut ctx, t(1, 0, 0));
    // The care team finishing the record within the grace period: fine.
    assert!(run(&ctx, &mut UserState::default(), &access(1, t(5, 10, 0)), P).is_empty());
    // After the grace period, even the care team.
    let late = access(2, t(1, 10, 0) + Duration::days(45));
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &late, P)), ["deceased"]);
    // Anyone else, the day after.
    ctx.care_team.clear();
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &access(3, t(2, 10, 0)), P)), ["deceased"]);
    // On the day of death itself: no.
    assert!(run(&ctx, &mut UserState::default(), &access(4, t(1, 10, 0)), P).is_empty());
}

#[test]
fn after_hours_outside_org_and_own_hours_only() {
    let mut ctx = OrgContext { hours: Some(office()), ..Default::default() };
    // 2026-03-02 is a Monday. 02:00: outside office hours, no history yet.
    let night = access(1, t(2, 2, 0));
    assert_eq!(codes(&run(&ctx, &mut UserState::default(), &night, P)), ["after_hours"]);
    // Inside hours: nothing.
    assert!(run(&ctx, &mut UserState::default(), &access(2, t(2, 9, 0)), P).is_empty());
    // A night worker whose history is at night: their usual hour.
    let mut nightworker = UserState::default();
    nightworker.hours[2] = 300;
    assert!(run(&ctx, &mut nightworker, &access(3, t(2, 2, 0)), P).is_empty());
    // A day worker with a long history at 02:00 never seen: flagged.
    let mut dayworker = UserState::default();
    dayworker.hours[10] = 300;
    assert_eq!(codes(&run(&ctx, &mut dayworker, &access(4, t(2, 2, 0)), P)), ["after_hours"]);
    // The care team at night: explained, not flagged.
    on_team(&mut ctx, t(1, 0, 0));
    assert!(run(&ctx, &mut dayworker, &access(5, t(2, 2, 0)), P).is_empty());
    // Without working hours configured the detector is off.
    ctx.hours = None;
    ctx.care_team.clear();
    assert!(run(&ctx, &mut UserState::default(), &night, P).is_empty());
}

#[test]
fn volume_spike_against_own_baseline_role_and_floor() {
    let ctx = OrgContext::default();
    let th = Thresholds::default();
    let mut user = UserState::default();
    // Ten ordinary days of 10 distinct patients.
    for d in 0..10u32 {
        for p in 0..10u128 {
            let a = access(i64::from(d * 100) + p as i64, t(1 + d, 10, 0));
            let mut hits = Vec::new();
            on_access(
                &ctx,
                &th,
                &mut RoleBaselines::default(),
                &mut user,
                &a,
                &[(id(1000 + p), Explanation::CareTeam)],
                &mut hits,
            );
            assert!(hits.is_empty());
        }
    }
    assert_eq!(user.baseline_days, 9);
    assert!((user.baseline_mean - 10.0).abs() < 1e-9);
    // Day 11: the 41st distinct patient crosses max(3 × 10, floor 40).
    let mut hits = Vec::new();
    for p in 0..45u128 {
        let a = access(5000 + p as i64, t(12, 10, 0));
        on_access(
            &ctx,
            &th,
            &mut RoleBaselines::default(),
            &mut user,
            &a,
            &[(id(2000 + p), Explanation::CareTeam)],
            &mut hits,
        );
    }
    assert_eq!(hits.len(), 5, "patients 41..45 are the evidence");
    assert!(hits.iter().all(|h| h.detector == Detector::VolumeSpike && h.bucket == "2026-03-12"));
    // A higher role baseline raises the bar.
    let mut user2 = UserState::default();
    let established =
        UserState { role: Some(ActorRole::Clinician), baseline_days: 10, baseline_mean: 20.0, ..Default::default() };
    let mut roles = RoleBaselines::new(&HashMap::from([(id(9), established)]), &th);
    assert_eq!(roles.get("clinician"), Some(20.0));
    let mut hits = Vec::new();
    for p in 0..45u128 {
        on_access(
            &ctx,
            &th,
            &mut roles,
            &mut user2,
            &access(p as i64, t(12, 10, 0)),
            &[(id(3000 + p), Explanation::CareTeam)],
            &mut hits,
        );
    }
    assert!(hits.is_empty(), "45 ≤ 3 × 20");
}

#[test]
fn after_disable_and_reenable() {
    let ctx = OrgContext::default();
    let mut user = UserState::default();
    on_disable(&mut user, t(2, 12, 0), 77, true);
    let hits = run(&ctx, &mut user, &access(80, t(2, 13, 0)), P);
    assert_eq!(codes(&hits), ["after_disable"]);
    assert_eq!(hits[0].bucket, "77");
    on_disable(&mut user, t(2, 14, 0), 90, false);
    assert!(run(&ctx, &mut user, &access(91, t(2, 15, 0)), P).is_empty());
}

#[test]
fn dormant_after_a_long_silence() {
    let ctx = OrgContext::default();
    let mut user = UserState { last_access_at: Some(t(1, 10, 0) - Duration::days(61)), ..Default::default() };
    assert_eq!(codes(&run(&ctx, &mut user, &access(1, t(1, 10, 0)), P)), ["dormant"]);
    assert!(run(&ctx, &mut user, &access(2, t(1, 11, 0)), P).is_empty(), "only the return itself");
    let mut recent = UserState { last_access_at: Some(t(1, 10, 0) - Duration::days(59)), ..Default::default() };
    assert!(run(&ctx, &mut recent, &access(3, t(1, 10, 0)), P).is_empty());
}

#[test]
fn break_glass_is_explained_and_flagged() {
    let mut ctx = OrgContext::default();
    ctx.grants.insert((DOC, P), vec![(t(2, 9, 0), t(2, 21, 0))]);
    let hits = run(&ctx, &mut UserState::default(), &access(1, t(2, 10, 0)), P);
    assert_eq!(codes(&hits), ["break_glass"]);
    assert_eq!(hits[0].explanation, Explanation::BreakGlass);
    // After the grant expired: unexplained, and no longer a break-glass access.
    let hits = run(&ctx, &mut UserState::default(), &access(2, t(2, 22, 0)), P);
    assert!(hits.is_empty());
    let g = on_grant(&access(3, t(2, 9, 0)), P);
    assert_eq!((g.detector, g.bucket.as_str()), (Detector::BreakGlass, "2026-03-02"));
}

#[test]
fn explanations_in_order() {
    let mut ctx = OrgContext::default();
    let facts =
        |role, resource_type| AccessFacts { at: t(2, 10, 0), actor: DOC, role, resource_type, break_glass: false };
    assert_eq!(explain(&ctx, &facts(ActorRole::Clinician, "chart"), P), Explanation::None);
    ctx.conversations.insert((DOC, P), t(1, 0, 0));
    assert_eq!(explain(&ctx, &facts(ActorRole::Clinician, "chart"), P), Explanation::Conversation);
    on_team(&mut ctx, t(1, 0, 0));
    assert_eq!(explain(&ctx, &facts(ActorRole::Clinician, "chart"), P), Explanation::CareTeam);
    let ctx = OrgContext::default();
    assert_eq!(explain(&ctx, &facts(ActorRole::Admin, "patient"), P), Explanation::AdminDemographics);
    assert_eq!(explain(&ctx, &facts(ActorRole::Admin, "chart"), P), Explanation::None);
    assert_eq!(explain(&ctx, &facts(ActorRole::Auditor, "access_report"), P), Explanation::PrivacyReview);
    assert_eq!(explain(&ctx, &facts(ActorRole::Patient, "chart"), P), Explanation::None);
}

#[test]
fn every_detector_code_is_documented() {
    let doc = include_str!("../../docs/privacy-monitoring.md");
    for d in ALL {
        assert!(doc.contains(&format!("`{}`", d.code())), "docs/privacy-monitoring.md must describe {}", d.code());
        assert_eq!(Detector::parse(d.code()), Some(d));
        assert!(!d.rule().is_empty());
    }
}
