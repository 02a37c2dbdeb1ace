//! Explanations: the relationship that held, at the time of an access, between the user and
//! the patient whose data they reached (explanation-based auditing, Fabbri & LeFevre 2013).
//! Checked in the order below; the first that holds is the event's explanation and is stored
//! beside the ledger entry (`monitor_explanations`, code 0 = unexplained).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::OrgContext;

/// Who acted, as the ledger entry's `actor_role` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorRole {
    Patient,
    Clinician,
    Admin,
    Auditor,
    Other,
}

impl ActorRole {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("patient") => Self::Patient,
            Some("clinician") => Self::Clinician,
            Some("admin") => Self::Admin,
            Some("auditor") => Self::Auditor,
            _ => Self::Other,
        }
    }

    /// Staff: anyone but a patient (and a service context).
    pub fn is_staff(self) -> bool {
        matches!(self, Self::Clinician | Self::Admin | Self::Auditor)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Clinician => "clinician",
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Other => "other",
        }
    }
}

/// Why an access was legitimate on its face. Codes are stored: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Explanation {
    /// No relationship held.
    None = 0,
    /// The patient reading their own record (`patients.user_id` is the actor).
    Own = 1,
    /// The user was on the patient's care team when they accessed.
    CareTeam = 2,
    /// The user handled (was assigned) one of the patient's conversations.
    Conversation = 3,
    /// The user had prescribed for the patient.
    Prescriber = 4,
    /// An admin's work on demographics, invites or the care team (no clinical content).
    AdminDemographics = 5,
    /// An auditor reading the patient's access report or the ledger.
    PrivacyReview = 6,
    /// A live break-glass grant (or an entry the request path flagged break-glass): explained,
    /// but every grant is still queued for review by the `break_glass` detector.
    BreakGlass = 7,
}

/// Every explanation that can hold, in the order they are tried (the evidence lists those
/// that did not).
pub const ALL: [Explanation; 7] = [
    Explanation::Own,
    Explanation::CareTeam,
    Explanation::Conversation,
    Explanation::Prescriber,
    Explanation::AdminDemographics,
    Explanation::PrivacyReview,
    Explanation::BreakGlass,
];

impl Explanation {
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(c: i16) -> Self {
        ALL.into_iter().find(|e| e.code() == c).unwrap_or(Self::None)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Own => "own_record",
            Self::CareTeam => "care_team",
            Self::Conversation => "conversation_handler",
            Self::Prescriber => "prescriber",
            Self::AdminDemographics => "admin_demographics",
            Self::PrivacyReview => "privacy_review",
            Self::BreakGlass => "break_glass",
        }
    }

    pub fn is_explained(self) -> bool {
        self != Self::None
    }

    /// A care relationship (the user treats or serves the patient): what `vip`,
    /// `employee_patient`, `deceased` and `after_hours` accept. Break-glass is not one.
    pub fn is_care_relationship(self) -> bool {
        !matches!(self, Self::None | Self::BreakGlass)
    }
}

/// What the explanation needs to know about one access to one patient.
#[derive(Debug, Clone, Copy)]
pub struct AccessFacts<'a> {
    pub at: DateTime<Utc>,
    pub actor: Uuid,
    pub role: ActorRole,
    pub resource_type: &'a str,
    /// The request path marked the entry break-glass.
    pub break_glass: bool,
}

/// Resource types an admin touches for demographics work (no clinical content).
const ADMIN_RESOURCES: &[&str] =
    &["patient", "patient_invite", "care_team", "patient_flags", "request", "patient_lookup", "access_report"];
/// Resource types an auditor reads about a patient.
/// (`patient_lookup`: finding a patient by MRN for the event browser or their access report.)
const REVIEW_RESOURCES: &[&str] = &["access_report", "audit_log", "privacy_alert", "request", "patient_lookup"];

/// The first relationship that held between `a.actor` and `patient` at `a.at`.
pub fn explain(ctx: &OrgContext, a: &AccessFacts<'_>, patient: Uuid) -> Explanation {
    let held = |m: &std::collections::HashMap<(Uuid, Uuid), DateTime<Utc>>| {
        m.get(&(a.actor, patient)).is_some_and(|since| *since <= a.at)
    };
    match a.role {
        ActorRole::Patient => {
            if ctx.portal_accounts.get(&patient) == Some(&a.actor) {
                Explanation::Own
            } else {
                Explanation::None
            }
        }
        ActorRole::Clinician | ActorRole::Admin | ActorRole::Auditor | ActorRole::Other => {
            if held(&ctx.care_team) {
                Explanation::CareTeam
            } else if held(&ctx.conversations) {
                Explanation::Conversation
            } else if held(&ctx.prescribers) {
                Explanation::Prescriber
            } else if a.role == ActorRole::Admin && ADMIN_RESOURCES.contains(&a.resource_type) {
                Explanation::AdminDemographics
            } else if a.role == ActorRole::Auditor && REVIEW_RESOURCES.contains(&a.resource_type) {
                Explanation::PrivacyReview
            } else if a.break_glass
                || ctx
                    .grants
                    .get(&(a.actor, patient))
                    .is_some_and(|gs| gs.iter().any(|(from, to)| *from <= a.at && a.at < *to))
            {
                Explanation::BreakGlass
            } else {
                Explanation::None
            }
        }
    }
}

/// The weakest of several patients' explanations (an entry is explained only when every
/// patient it names is).
pub fn weakest(a: Explanation, b: Explanation) -> Explanation {
    match (a, b) {
        (Explanation::None, _) | (_, Explanation::None) => Explanation::None,
        (Explanation::BreakGlass, _) | (_, Explanation::BreakGlass) => Explanation::BreakGlass,
        (a, _) => a,
    }
}
