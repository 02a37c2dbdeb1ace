//! Ledger entries as FHIR R4 `AuditEvent` resources following IHE Basic Audit Log Patterns
//! (BALP, <https://profiles.ihe.net/ITI/BALP/>). Rendering only; no I/O.
//!
//! Which pattern an entry follows ([`Pattern::of`]):
//!
//! | ledger action | AuditEvent | BALP profile claimed (success, client address known) |
//! |---|---|---|
//! | `read` of named resources | `rest` / `read`, action R | `Read`, `PatientRead` with a patient |
//! | `read` of a list (no resource id, or several patients) | `rest` / `search-type`, action E, a query entity | `Query`, `PatientQuery` with one patient |
//! | `create`, `update`, `delete` | `rest` / `create`·`update`·`delete`, C·U·D | `Create`·`Update`·`Delete` (`Patient…` with a patient) |
//! | `export` (audit log export, printed prescription) | DCM 110106 Export / ISO 21089 `disclose`, action R | `PrivacyDisclosure.Source` when it names patients |
//! | `login`, `login_failed`, `mfa`, `refresh` | DCM 110114 User Authentication / 110122 Login, action E | none (BALP has no sign-in profile) |
//! | `logout` | DCM 110114 / 110123 Logout, action E | none |
//! | `break_glass` | DCM 110113 Security Alert / 110127 Emergency Override Started, purposeOfUse BTG | none |
//! | `admin`, `security` | DCM 110113 / 110137 User Security Attributes Changed (users) or 110135 Object Security Attributes Changed | none |
//! | `key_management` | DCM 110113 / 110129 Security Configuration | none |
//! | `import` | DCM 110107 Import, action C | none |
//!
//! The BALP profiles fix `outcome` to 0 (success): a refused or failed access keeps the same
//! shape with outcome 4 (denied: the request was refused, nothing happened) or 8 (error: the
//! request failed), and claims no profile. Agents: the user (`who.identifier` with this
//! instance's user system, `role` coded, `requestor`), the client (its network address, from
//! the TCP connection) and the server (this instance, the same reference as
//! `source.observer`), each with the agent type its profile names. Entities: the patient
//! (audit-entity-type 1 Person, object-role 1 Patient, `Patient/<id>`), the data (type 2 System
//! Object, role 4 Domain Resource, identified in this instance's system for its resource type),
//! the query of a list read (role 24 Query) and the server's request id as the BALP
//! `XrequestId` transaction entity. The ledger keeps which list was read and for which patient,
//! not the raw query string: the query entity carries that (`<resource type>?patient=<id>`),
//! base64 as BALP requires, and the recorded reason as its description.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::canonical::format_timestamp;
use super::store::LogRow;

pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
pub const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
pub const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
pub const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
pub const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
pub const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
pub const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
pub const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
pub const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
pub const PROFILE_BASE: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";
const RFC3986: &str = "urn:ietf:rfc:3986";

/// This Custos instance as audit source, named by the ledger origin (`CUSTOS_LEDGER_ORIGIN`,
/// e.g. `custos.example.org/ledger`), which already identifies its logs to the outside.
#[derive(Debug, Clone)]
pub struct FhirSource {
    origin: String,
}

impl FhirSource {
    pub fn new(origin: &str) -> Self {
        Self { origin: origin.trim_end_matches('/').to_owned() }
    }

    /// The instance's URI: `https://<origin>`; the base of its identifier systems.
    pub fn uri(&self) -> String {
        format!("https://{}", self.origin)
    }

    /// The host part of the origin: the server's network address (a machine name).
    pub fn host(&self) -> &str {
        self.origin.split('/').next().unwrap_or(&self.origin)
    }

    /// The identifier system of one kind of id of this instance (`https://<origin>/user`).
    pub fn system(&self, kind: &str) -> String {
        format!("{}/{kind}", self.uri())
    }

    /// `source.observer` and the server agent's `who`: a Device named by identifier.
    fn device(&self) -> Value {
        json!({"type": "Device", "identifier": {"system": RFC3986, "value": self.uri()}, "display": format!("Custos {}", self.origin)})
    }
}

/// A REST interaction of the BALP basic profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    Create,
    Read,
    Update,
    Delete,
    Query,
}

/// How a ledger entry is told as an AuditEvent (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Rest(Rest),
    Disclosure,
    Login,
    Logout,
    /// DCM 110113 with this DCM subtype.
    SecurityAlert(&'static str, &'static str),
    Import,
}

impl Pattern {
    pub fn of(row: &LogRow) -> Self {
        let e = &row.event;
        match e.action.as_str() {
            "read" if e.resource_ids.is_empty() || !e.patient_ids.is_empty() => Self::Rest(Rest::Query),
            "read" => Self::Rest(Rest::Read),
            "create" => Self::Rest(Rest::Create),
            "update" => Self::Rest(Rest::Update),
            "delete" => Self::Rest(Rest::Delete),
            "export" => Self::Disclosure,
            "login" | "login_failed" | "mfa" | "refresh" => Self::Login,
            "logout" => Self::Logout,
            "break_glass" => Self::SecurityAlert("110127", "Emergency Override Started"),
            "key_management" => Self::SecurityAlert("110129", "Security Configuration"),
            "import" => Self::Import,
            _ if matches!(e.resource_type.as_str(), "user" | "staff_profile" | "session" | "mfa_credential") => {
                Self::SecurityAlert("110137", "User Security Attributes Changed")
            }
            _ => Self::SecurityAlert("110135", "Object Security Attributes Changed"),
        }
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [coding(system, code, display)]})
}

/// The user's role as coded concept: the Custos role, and the HL7 role class it is.
fn role(source: &FhirSource, role: &str) -> Value {
    let class = match role {
        "clinician" => Some(("PROV", "healthcare provider")),
        "patient" => Some(("PAT", "patient")),
        "admin" | "auditor" => Some(("EMP", "employee")),
        _ => None,
    };
    let mut codings = vec![json!({"system": source.system("role"), "code": role})];
    if let Some((code, display)) = class {
        codings.push(coding(ROLE_CLASS, code, display));
    }
    json!({"coding": codings, "text": role})
}

/// A data entity: the resource with `id` of `resource_type`, identified in this instance.
fn data_entity(source: &FhirSource, resource_type: &str, id: &str) -> Value {
    let what = if resource_type == "patient" && uuid::Uuid::parse_str(id).is_ok() {
        json!({"reference": format!("Patient/{id}")})
    } else {
        json!({"identifier": {"system": source.system(resource_type), "value": id}})
    };
    json!({
        "what": what,
        "type": coding(ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
    })
}

fn patient_entity(id: uuid::Uuid) -> Value {
    json!({
        "what": {"reference": format!("Patient/{id}")},
        "type": coding(ENTITY_TYPE, "1", "Person"),
        "role": coding(OBJECT_ROLE, "1", "Patient"),
    })
}

/// The ids of an entry with the kind of each: events written before bootstrap recorded its
/// admin separately name `[organization, first admin]` under `organization`.
fn resources(row: &LogRow) -> Vec<(&str, &str)> {
    let e = &row.event;
    let bootstrap = e.resource_type == "organization"
        && e.resource_ids.len() == 2
        && e.reason.as_deref().is_some_and(|r| r.starts_with("bootstrap"));
    e.resource_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (if bootstrap && i == 1 { "user" } else { e.resource_type.as_str() }, id.as_str()))
        .collect()
}

/// A FHIR R4 AuditEvent for one ledger entry, following BALP (module documentation).
pub fn audit_event(row: &LogRow, source: &FhirSource) -> Value {
    let e = &row.event;
    let pattern = Pattern::of(row);
    let success = e.outcome == "success";
    let patients: Vec<uuid::Uuid> = {
        let mut p: Vec<uuid::Uuid> = e.patient_id.into_iter().chain(e.patient_ids.iter().copied()).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let (event_type, subtypes, action): (Value, Vec<Value>, &str) = match pattern {
        Pattern::Rest(r) => {
            let (code, action) = match r {
                Rest::Create => ("create", "C"),
                Rest::Read => ("read", "R"),
                Rest::Update => ("update", "U"),
                Rest::Delete => ("delete", "D"),
                Rest::Query => ("search-type", "E"),
            };
            (coding(EVENT_TYPE, "rest", "Restful Operation"), vec![coding(RESTFUL, code, code)], action)
        }
        Pattern::Disclosure => (
            coding(DCM, "110106", "Export"),
            vec![coding(LIFECYCLE, "disclose", "Disclose Record Lifecycle Event"), coding(RESTFUL, "read", "read")],
            "R",
        ),
        Pattern::Login => (coding(DCM, "110114", "User Authentication"), vec![coding(DCM, "110122", "Login")], "E"),
        Pattern::Logout => (coding(DCM, "110114", "User Authentication"), vec![coding(DCM, "110123", "Logout")], "E"),
        Pattern::SecurityAlert(code, display) => {
            (coding(DCM, "110113", "Security Alert"), vec![coding(DCM, code, display)], "E")
        }
        Pattern::Import => (coding(DCM, "110107", "Import"), vec![], "C"),
    };
    let outcome = match e.outcome.as_str() {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    };

    // Agents. Which DICOM role the client and the server play depends on the direction BALP
    // gives the interaction: Read names the client the destination, everything else the source.
    let (client_type, server_type) = match pattern {
        Pattern::Rest(Rest::Read) => (("110152", "Destination Role ID"), ("110153", "Source Role ID")),
        Pattern::Disclosure => (("110152", "Destination Role ID"), ("110153", "Source Role ID")),
        _ => (("110153", "Source Role ID"), ("110152", "Destination Role ID")),
    };
    let user_type = match pattern {
        Pattern::Rest(Rest::Create | Rest::Update) => ("AUT", "author"),
        Pattern::Rest(Rest::Delete) => ("CST", "custodian"),
        Pattern::Rest(Rest::Read | Rest::Query) | Pattern::Disclosure => ("IRCP", "information recipient"),
        _ => ("AUT", "author"),
    };
    let mut agents = Vec::new();
    if let Some(actor) = e.actor_id {
        let mut user = json!({
            "type": concept(PARTICIPATION, user_type.0, user_type.1),
            "who": {"identifier": {"system": source.system("user"), "value": actor}},
            "requestor": true,
        });
        if let Some(r) = &e.actor_role {
            user["role"] = json!([role(source, r)]);
        }
        if e.break_glass || pattern == Pattern::SecurityAlert("110127", "Emergency Override Started") {
            user["purposeOfUse"] =
                json!([concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", "BTG", "break the glass")]);
        }
        agents.push(user);
    }
    let client_known = e.client_ip.is_some() || e.user_agent.is_some();
    if client_known {
        let mut client = json!({
            "type": concept(DCM, client_type.0, client_type.1),
            "who": {"display": e.user_agent.as_deref().unwrap_or("HTTP client")},
            "requestor": e.actor_id.is_none(),
        });
        if let Some(ip) = &e.client_ip {
            client["network"] = json!({"address": ip, "type": "2"});
        }
        agents.push(client);
    }
    agents.push(json!({
        "type": concept(DCM, server_type.0, server_type.1),
        "who": source.device(),
        "requestor": e.actor_id.is_none() && !client_known,
        "network": {"address": source.host(), "type": "1"},
    }));

    // Entities.
    let mut entity = Vec::new();
    if let Some(req) = e.request_id {
        entity.push(json!({
            "what": {"identifier": {"value": req}},
            "type": coding(BALP_ENTITY_TYPE, "XrequestId", "transport specific unique identifier where http X-Request-Id is used"),
        }));
    }
    for p in &patients {
        entity.push(patient_entity(*p));
    }
    if pattern == Pattern::Rest(Rest::Query) {
        let filter = e.patient_id.map(|p| format!("?patient={p}")).unwrap_or_default();
        let mut query = json!({
            "type": coding(ENTITY_TYPE, "2", "System Object"),
            "role": coding(OBJECT_ROLE, "24", "Query"),
            "query": B64.encode(format!("{}{filter}", e.resource_type)),
        });
        if let Some(r) = &e.reason {
            query["description"] = json!(r);
        }
        entity.push(query);
    }
    // A list of patients names them as patient entities already; BALP records a query's
    // criteria, not its results.
    let listed_patients = pattern == Pattern::Rest(Rest::Query) && e.resource_type == "patient";
    let data: Vec<(&str, &str)> = if listed_patients { Vec::new() } else { resources(row) };
    for (kind, id) in &data {
        entity.push(data_entity(source, kind, id));
    }

    // The profile the entry conforms to, claimed only when every element it requires is here.
    let client_addressed = e.client_ip.is_some();
    let profile = match pattern {
        Pattern::Rest(r) if success && client_addressed => {
            let base = match r {
                Rest::Create => "Create",
                Rest::Read => "Read",
                Rest::Update => "Update",
                Rest::Delete => "Delete",
                Rest::Query => "Query",
            };
            // BALP slices entities by type: one data entity (System Object) per profile, and a
            // query entity (also a System Object) only in a query.
            let ids = data.len();
            let prefix = if patients.len() == 1 { "Patient" } else { "" };
            match r {
                Rest::Query if ids == 0 => Some(format!("{prefix}{base}")),
                Rest::Query => None,
                _ if ids == 1 => Some(format!("{prefix}{base}")),
                _ => None,
            }
        }
        Pattern::Disclosure if client_addressed && !patients.is_empty() => Some("PrivacyDisclosure.Source".to_owned()),
        _ => None,
    };

    let recorded = format_timestamp(&e.occurred_at).unwrap_or_else(|_| e.occurred_at.to_rfc3339());
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": e.event_id,
        "type": event_type,
        "action": action,
        "recorded": recorded,
        "outcome": outcome,
        "agent": agents,
        "source": {
            "site": source.origin,
            "observer": source.device(),
            "type": [coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": entity,
        "extension": [{"url": "urn:custos:ledger-index", "valueString": format!("{}/{}", row.ledger_id, row.seq)}],
    });
    if !subtypes.is_empty() {
        ev["subtype"] = json!(subtypes);
    }
    if let Some(p) = profile {
        ev["meta"] = json!({"profile": [format!("{PROFILE_BASE}{p}")]});
    }
    if let Some(r) = &e.reason {
        ev["outcomeDesc"] = json!(r);
    }
    ev
}
