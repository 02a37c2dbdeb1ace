//! The detectors. Each has a stable code (stored in alerts, used by the API's `detector`
//! filter) and a rule, documented here and in docs/privacy-monitoring.md (a test checks the
//! document names every code). Thresholds come from [`Thresholds`].
//!
//! Every detector looks at one access at a time, in ledger order, with the organization's
//! facts ([`OrgContext`]) and the acting user's running history ([`UserState`]); nothing here
//! touches the database, so the rules are unit-tested directly.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::config::Thresholds;
use super::context::OrgContext;
use super::explain::{ActorRole, Explanation};

/// The detectors, by stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    SameFamilyName,
    SameAddress,
    EmployeePatient,
    SelfAccess,
    Vip,
    Deceased,
    AfterHours,
    VolumeSpike,
    AfterDisable,
    Dormant,
    BreakGlass,
}

pub const ALL: [Detector; 11] = [
    Detector::SameFamilyName,
    Detector::SameAddress,
    Detector::EmployeePatient,
    Detector::SelfAccess,
    Detector::Vip,
    Detector::Deceased,
    Detector::AfterHours,
    Detector::VolumeSpike,
    Detector::AfterDisable,
    Detector::Dormant,
    Detector::BreakGlass,
];

impl Detector {
    pub fn code(self) -> &'static str {
        match self {
            Self::SameFamilyName => "same_family_name",
            Self::SameAddress => "same_address",
            Self::EmployeePatient => "employee_patient",
            Self::SelfAccess => "self_access",
            Self::Vip => "vip",
            Self::Deceased => "deceased",
            Self::AfterHours => "after_hours",
            Self::VolumeSpike => "volume_spike",
            Self::AfterDisable => "after_disable",
            Self::Dormant => "dormant",
            Self::BreakGlass => "break_glass",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        ALL.into_iter().find(|d| d.code() == code)
    }

    /// The rule, as the review API shows it with an alert's evidence.
    pub fn rule(self) -> &'static str {
        match self {
            Self::SameFamilyName => {
                "A staff member accessed a patient whose normalized family name equals the one in their staff \
                 profile (keyed blind indexes compared; nothing decrypted). Flagged even when a relationship \
                 explains the access: a relative on one's own care team is a conflict of interest to review."
            }
            Self::SameAddress => {
                "A staff member accessed a patient whose normalized address equals the one in their staff profile \
                 (blind indexes). Flagged even when explained."
            }
            Self::EmployeePatient => {
                "A staff member accessed the patient record of another employee of the organization without a \
                 care relationship (care team, conversation, prescription, admin demographics work)."
            }
            Self::SelfAccess => {
                "A staff member accessed their own patient record through a staff route (patients use the portal). \
                 Flagged whatever explains it."
            }
            Self::Vip => "An access to a patient an admin flagged confidential, without a care relationship.",
            Self::Deceased => {
                "An access after the patient's recorded date of death: without a care relationship during the grace \
                 period, and every access after it."
            }
            Self::AfterHours => {
                "An access without a care relationship outside the organization's working hours (its time zone) and \
                 outside the user's own usual hours (hours of day holding at least the usual share of their history, \
                 once that history is long enough)."
            }
            Self::VolumeSpike => {
                "A user's distinct patients in one local day exceeded the volume factor times their own daily \
                 baseline (once established) and their role's, and the minimum in any case."
            }
            Self::AfterDisable => {
                "Accesses by a user after an admin disabled the account, or in the hours shortly before it was \
                 disabled."
            }
            Self::Dormant => "A user's first access after a long period without any access.",
            Self::BreakGlass => {
                "Every break-glass grant, with the accesses made under it: explained by the grant, still reviewed."
            }
        }
    }
}

/// What one user has done so far (persisted by the engine with the watermark).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    /// Accesses per local hour of day.
    pub hours: [i64; 24],
    pub last_access_at: Option<DateTime<Utc>>,
    /// The local day being counted and its distinct patients.
    pub day: Option<NaiveDate>,
    pub day_patients: HashSet<Uuid>,
    /// Completed active days counted into the baseline, and their mean distinct patients.
    pub baseline_days: i32,
    pub baseline_mean: f64,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_seq: Option<i64>,
    /// The role the user acted in most recently (for the role baseline).
    pub role: Option<ActorRole>,
    /// Changed since loaded: the engine writes it back.
    pub dirty: bool,
}

/// The baseline is a mean over at most this many active days, then a moving average.
const BASELINE_WINDOW: i32 = 30;

impl UserState {
    fn usual_hour(&self, hour: usize, th: &Thresholds) -> bool {
        let total: i64 = self.hours.iter().sum();
        if total < 0 || (total as u64) < th.after_hours_min_history {
            return false;
        }
        let near = self.hours[(hour + 23) % 24] + self.hours[hour] + self.hours[(hour + 1) % 24];
        near as f64 / total as f64 >= th.after_hours_usual_share
    }

    /// Moves the day counter to `day`, folding a finished day into the baseline.
    fn roll_day(&mut self, day: NaiveDate) {
        if self.day == Some(day) {
            return;
        }
        if self.day.is_some() && !self.day_patients.is_empty() {
            let n = f64::from(self.baseline_days.min(BASELINE_WINDOW - 1));
            self.baseline_mean = (self.baseline_mean * n + self.day_patients.len() as f64) / (n + 1.0);
            self.baseline_days = self.baseline_days.saturating_add(1);
        }
        self.day = Some(day);
        self.day_patients.clear();
    }
}

/// The mean daily baseline of each role's established users, kept up to date as users'
/// baselines move (so that the result does not depend on where batches begin).
#[derive(Debug, Clone, Default)]
pub struct RoleBaselines {
    sums: HashMap<&'static str, (f64, u32)>,
}

impl RoleBaselines {
    /// From every user's state.
    pub fn new(states: &HashMap<Uuid, UserState>, th: &Thresholds) -> Self {
        let mut r = Self::default();
        for s in states.values() {
            r.apply(contribution(s, th), 1.0);
        }
        r
    }

    pub fn get(&self, role: &str) -> Option<f64> {
        self.sums.get(role).filter(|(_, n)| *n > 0).map(|(sum, n)| sum / f64::from(*n))
    }

    fn apply(&mut self, c: Option<(&'static str, f64)>, sign: f64) {
        if let Some((role, mean)) = c {
            let e = self.sums.entry(role).or_default();
            e.0 += sign * mean;
            if sign > 0.0 {
                e.1 += 1;
            } else {
                e.1 = e.1.saturating_sub(1);
            }
        }
    }
}

fn contribution(s: &UserState, th: &Thresholds) -> Option<(&'static str, f64)> {
    match s.role {
        Some(role) if s.baseline_days >= th.volume_min_baseline_days => Some((role.as_str(), s.baseline_mean)),
        _ => None,
    }
}

/// One finding: which detector, about whom, in which alert (`bucket`), from which entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub detector: Detector,
    pub actor: Uuid,
    pub patient: Option<Uuid>,
    pub bucket: String,
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The patient the entry is evidence about (an entry may name several).
    pub evidence_patient: Option<Uuid>,
    pub explanation: Explanation,
}

/// An access as the detectors see it: one ledger entry by one user, in local time.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Uuid,
    pub role: ActorRole,
    pub break_glass: bool,
    pub local_day: NaiveDate,
    pub local_dow: u8,
    pub local_minute: u16,
}

/// Runs every access detector on one entry naming `patients` (with their explanations),
/// updating the user's history. Per-patient rules first, then the per-user ones.
pub fn on_access(
    ctx: &OrgContext,
    th: &Thresholds,
    roles: &mut RoleBaselines,
    user: &mut UserState,
    a: &Access,
    patients: &[(Uuid, Explanation)],
    hits: &mut Vec<Hit>,
) {
    let hit = |d: Detector, patient: Option<Uuid>, bucket: String, ev: (Uuid, Explanation)| Hit {
        detector: d,
        actor: a.actor,
        patient,
        bucket,
        seq: a.seq,
        at: a.at,
        evidence_patient: Some(ev.0),
        explanation: ev.1,
    };
    let day = a.local_day.to_string();
    let staff = ctx.staff.get(&a.actor);
    for &(p, why) in patients {
        if a.role.is_staff() {
            let own_record = staff.and_then(|s| s.patient) == Some(p);
            if own_record {
                hits.push(hit(Detector::SelfAccess, Some(p), String::new(), (p, why)));
            }
            if let (Some(s), Some(k)) = (staff, ctx.patient_keys.get(&p))
                && !own_record
            {
                if s.family_name.is_some() && s.family_name == k.family_name {
                    hits.push(hit(Detector::SameFamilyName, Some(p), String::new(), (p, why)));
                }
                if s.address.is_some() && s.address == k.address {
                    hits.push(hit(Detector::SameAddress, Some(p), String::new(), (p, why)));
                }
            }
            if let Some(employee) = ctx.employees.get(&p)
                && *employee != a.actor
                && !why.is_care_relationship()
            {
                hits.push(hit(Detector::EmployeePatient, Some(p), String::new(), (p, why)));
            }
        }
        if let Some(f) = ctx.flags.get(&p) {
            if f.confidential && !why.is_care_relationship() && !(a.role == ActorRole::Patient && why.is_explained()) {
                hits.push(hit(Detector::Vip, Some(p), String::new(), (p, why)));
            }
            if let Some(died) = f.deceased_on
                && a.local_day > died
            {
                let past_grace = (a.local_day - died).num_days() > th.deceased_grace_days;
                if past_grace || !why.is_care_relationship() {
                    hits.push(hit(Detector::Deceased, Some(p), String::new(), (p, why)));
                }
            }
        }
        if a.break_glass || why == Explanation::BreakGlass {
            hits.push(hit(Detector::BreakGlass, Some(p), day.clone(), (p, why)));
        }
        if a.role.is_staff()
            && !why.is_care_relationship()
            && let Some(hours) = &ctx.hours
            && !hours.is_open(a.local_dow, a.local_minute)
            && !user.usual_hour(usize::from(a.local_minute / 60), th)
        {
            hits.push(hit(Detector::AfterHours, Some(p), day.clone(), (p, why)));
        }
        if let Some(at) = user.disabled_at
            && a.at >= at
        {
            let bucket = user.disabled_seq.map(|s| s.to_string()).unwrap_or_default();
            hits.push(hit(Detector::AfterDisable, None, bucket, (p, why)));
        }
    }
    if !a.role.is_staff() {
        return;
    }
    // Per user: dormant return, volume, and the history the next access is compared with.
    let first = patients.first().copied();
    if let (Some(last), Some(ev)) = (user.last_access_at, first)
        && (a.at - last).num_days() >= th.dormant_days
    {
        hits.push(hit(Detector::Dormant, None, day.clone(), ev));
    }
    let before = contribution(user, th);
    user.roll_day(a.local_day);
    user.role = Some(a.role);
    roles.apply(before, -1.0);
    roles.apply(contribution(user, th), 1.0);
    let mut new_patients = Vec::new();
    for &(p, why) in patients {
        if user.day_patients.insert(p) {
            new_patients.push((p, why));
        }
    }
    if !new_patients.is_empty() {
        let own = (user.baseline_days >= th.volume_min_baseline_days).then_some(user.baseline_mean);
        let role = roles.get(a.role.as_str());
        let limit = [own, role]
            .into_iter()
            .flatten()
            .map(|b| b * th.volume_factor)
            .fold(th.volume_min_patients as f64, f64::max);
        if user.day_patients.len() as f64 > limit {
            // The entry that crossed the limit and every later one that day are the evidence.
            for ev in new_patients {
                hits.push(hit(Detector::VolumeSpike, None, day.clone(), ev));
            }
        }
    }
    user.hours[usize::from(a.local_minute / 60).min(23)] += 1;
    user.last_access_at = Some(a.at);
    user.dirty = true;
}

/// A break-glass grant (ledger entry `seq`): every one is reviewed.
pub fn on_grant(a: &Access, patient: Uuid) -> Hit {
    Hit {
        detector: Detector::BreakGlass,
        actor: a.actor,
        patient: Some(patient),
        bucket: a.local_day.to_string(),
        seq: a.seq,
        at: a.at,
        evidence_patient: Some(patient),
        explanation: Explanation::BreakGlass,
    }
}

/// An admin disabled (`disabled = true`) or re-enabled a user at `at` (ledger entry `seq`).
pub fn on_disable(user: &mut UserState, at: DateTime<Utc>, seq: i64, disabled: bool) {
    if disabled {
        user.disabled_at = Some(at);
        user.disabled_seq = Some(seq);
    } else {
        user.disabled_at = None;
        user.disabled_seq = None;
    }
    user.dirty = true;
}

#[cfg(test)]
#[path = "detectors_tests.rs"]
mod tests;
