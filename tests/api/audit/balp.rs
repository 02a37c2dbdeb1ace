//! The FHIR export follows IHE Basic Audit Log Patterns (issue 17, item 1). A realistic run —
//! bootstrap, sign-in with MFA, sign-out, reads, list reads, creates, updates, deletes,
//! break-glass, a printed prescription, exports — is exported, and every AuditEvent is checked
//! against the required elements of the BALP profile it claims, written below from the
//! implementation guide (<https://profiles.ihe.net/ITI/BALP/>, the profiles' StructureDefinitions
//! IHE.BasicAudit.{Create,Read,Update,Delete,Query}, their Patient* variants and
//! PrivacyDisclosure.Source), plus the rules every event keeps whatever it claims.
//!
//! With `CUSTOS_FHIR_OUT=<dir>` the exported bundles are written there for `ci/fhir-check`,
//! which parses them with the `fhir.resources` R4 and R4B models.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::world::call;
use super::{drain, setup};
use crate::common::TestApp;

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const BALP_ENTITY: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const PROFILE: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

type Code = (&'static str, &'static str);

/// An agent slice: its `type` pattern (any of), cardinality, and what it must carry.
struct Agent {
    types: &'static [Code],
    min: usize,
    max: usize,
    network: bool,
    /// `requestor` fixed to this value.
    requestor: Option<bool>,
    /// `who.identifier` with a `system` (users are named in the instance's user system).
    identified: bool,
}

/// What an entity slice's `what` must be.
#[derive(PartialEq)]
enum What {
    Any,
    PatientReference,
    Identifier,
    Absent,
}

/// An entity slice: its `type` pattern, `role` pattern (if fixed), cardinality and content.
struct Entity {
    ty: Code,
    roles: &'static [Code],
    min: usize,
    max: usize,
    what: What,
    query: bool,
}

/// One BALP profile's required elements.
struct Rule {
    profile: &'static str,
    ty: Code,
    subtype: Code,
    action: &'static str,
    /// `Some("0")`: the basic profiles record successes only.
    outcome: Option<&'static str>,
    agents: Vec<Agent>,
    entities: Vec<Entity>,
}

const SOURCE_ROLE: Code = (DCM, "110153");
const DEST_ROLE: Code = (DCM, "110152");
const DATA_SOURCES: &[Code] = &[(PARTICIPATION, "AUT"), (PARTICIPATION, "INF"), (PARTICIPATION, "CST")];
const RECIPIENT: &[Code] = &[(PARTICIPATION, "IRCP")];
const REST_OBJECT_ROLES: &[Code] = &[(OBJECT_ROLE, "4"), (OBJECT_ROLE, "3"), (OBJECT_ROLE, "20")];

fn agent(types: &'static [Code], min: usize, max: usize, network: bool) -> Agent {
    Agent { types, min, max, network, requestor: None, identified: false }
}

fn user(types: &'static [Code]) -> Agent {
    Agent { types, min: 0, max: 1, network: false, requestor: Some(true), identified: true }
}

fn transaction() -> Entity {
    Entity { ty: (BALP_ENTITY, "XrequestId"), roles: &[], min: 0, max: 1, what: What::Identifier, query: false }
}

fn data() -> Entity {
    Entity { ty: (ENTITY_TYPE, "2"), roles: REST_OBJECT_ROLES, min: 1, max: 1, what: What::Any, query: false }
}

fn patient() -> Entity {
    Entity {
        ty: (ENTITY_TYPE, "1"),
        roles: &[(OBJECT_ROLE, "1")],
        min: 1,
        max: 1,
        what: What::PatientReference,
        query: false,
    }
}

/// The BALP profiles this export claims, with the elements each requires.
fn rules() -> Vec<Rule> {
    // Create, Update, Delete: client = Source Role ID, server = Destination Role ID, the user
    // one of DataSources; Read: the reverse, user the information recipient; Query: as Create,
    // user the information recipient, a query entity (System Object, role Query, `query`
    // base64, no `what`) instead of the data entity.
    const SRC: &[Code] = &[SOURCE_ROLE];
    const DST: &[Code] = &[DEST_ROLE];
    let rest = |profile, code, action, read: bool, users: &'static [Code], query: bool, with_patient: bool| {
        let (client, server) = if read { (DST, SRC) } else { (SRC, DST) };
        let mut entities = vec![transaction()];
        entities.push(if query {
            Entity {
                ty: (ENTITY_TYPE, "2"),
                roles: &[(OBJECT_ROLE, "24")],
                min: 1,
                max: 1,
                what: What::Absent,
                query: true,
            }
        } else {
            data()
        });
        if with_patient {
            entities.push(patient());
        }
        Rule {
            profile,
            ty: (EVENT_TYPE, "rest"),
            subtype: (RESTFUL, code),
            action,
            outcome: Some("0"),
            agents: vec![agent(client, 1, 1, true), agent(server, 1, 1, true), user(users)],
            entities,
        }
    };
    let mut rules = Vec::new();
    for (base, code, action, read, users, query) in [
        ("Create", "create", "C", false, DATA_SOURCES, false),
        ("Read", "read", "R", true, RECIPIENT, false),
        ("Update", "update", "U", false, DATA_SOURCES, false),
        ("Delete", "delete", "D", false, DATA_SOURCES, false),
        ("Query", "search-type", "E", false, RECIPIENT, true),
    ] {
        rules.push(rest(base, code, action, read, users, query, false));
        rules.push(rest(leak(format!("Patient{base}")), code, action, read, users, query, true));
    }
    // PrivacyDisclosure.Source: DCM 110106 Export, subtype ISO 21089 disclose, action R; a
    // source agent (this server: who = source.observer) and a recipient agent, both with a
    // network address; a patient entity among two or more.
    rules.push(Rule {
        profile: "PrivacyDisclosure.Source",
        ty: (DCM, "110106"),
        subtype: (LIFECYCLE, "disclose"),
        action: "R",
        outcome: None,
        agents: vec![agent(&[SOURCE_ROLE], 1, 1, true), agent(&[DEST_ROLE], 1, 1, true)],
        entities: vec![Entity {
            ty: (ENTITY_TYPE, "1"),
            roles: &[(OBJECT_ROLE, "1")],
            min: 1,
            max: usize::MAX,
            what: What::PatientReference,
            query: false,
        }],
    });
    rules
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn has(c: &Value, (system, code): Code) -> bool {
    c["system"] == system && c["code"] == code
}

/// A CodeableConcept (or a Coding) matching one of `codes`.
fn matches(v: &Value, codes: &[Code]) -> bool {
    let codings: Vec<&Value> = match v["coding"].as_array() {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    codings.iter().any(|c| codes.iter().any(|code| has(c, *code)))
}

/// Every violation of `rule` by `ev`.
fn check(rule: &Rule, ev: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    need(has(&ev["type"], rule.ty), format!("type {:?}", rule.ty));
    let subtypes = ev["subtype"].as_array().cloned().unwrap_or_default();
    need(subtypes.iter().any(|s| has(s, rule.subtype)), format!("subtype {:?}", rule.subtype));
    need(ev["action"] == rule.action, format!("action {}", rule.action));
    need(ev["recorded"].is_string(), "recorded".into());
    if let Some(o) = rule.outcome {
        need(ev["outcome"] == o, format!("outcome {o}"));
    }
    let observer = &ev["source"]["observer"];
    let agents = ev["agent"].as_array().cloned().unwrap_or_default();
    for a in &rule.agents {
        let slice: Vec<&Value> = agents.iter().filter(|g| matches(&g["type"], a.types)).collect();
        need((a.min..=a.max).contains(&slice.len()), format!("{} agent(s) of type {:?}", slice.len(), a.types));
        for g in slice {
            need(g["who"].is_object(), format!("agent {:?} who", a.types));
            if a.network {
                need(g["network"]["address"].is_string(), format!("agent {:?} network", a.types));
            } else {
                need(g.get("network").is_none(), format!("agent {:?} has no network (0..0)", a.types));
            }
            if let Some(r) = a.requestor {
                need(g["requestor"] == r, format!("agent {:?} requestor {r}", a.types));
            }
            if a.identified {
                need(
                    g["who"]["identifier"]["system"].is_string(),
                    format!("agent {:?} who.identifier.system", a.types),
                );
            }
        }
    }
    if rule.profile == "PrivacyDisclosure.Source" {
        // val-audit-source: the source agent is the audit source.
        let src = agents.iter().find(|g| matches(&g["type"], &[SOURCE_ROLE]));
        need(src.is_some_and(|g| &g["who"] == observer), "source agent who = source.observer".into());
        need(ev["entity"].as_array().map_or(0, Vec::len) >= 2, "entity 2..*".into());
    }
    let entities = ev["entity"].as_array().cloned().unwrap_or_default();
    for en in &rule.entities {
        let slice: Vec<&Value> = entities.iter().filter(|e| has(&e["type"], en.ty)).collect();
        need((en.min..=en.max).contains(&slice.len()), format!("{} entities of type {:?}", slice.len(), en.ty));
        for e in slice {
            if !en.roles.is_empty() {
                need(matches(&e["role"], en.roles), format!("entity {:?} role in {:?}", en.ty, en.roles));
            }
            match en.what {
                What::Any => need(e["what"].is_object(), format!("entity {:?} what", en.ty)),
                What::Absent => need(e.get("what").is_none(), format!("entity {:?} no what", en.ty)),
                What::Identifier => {
                    need(e["what"]["identifier"]["value"].is_string(), format!("entity {:?} id", en.ty))
                }
                What::PatientReference => need(
                    e["what"]["reference"].as_str().is_some_and(|r| r.starts_with("Patient/")),
                    format!("entity {:?} Patient reference", en.ty),
                ),
            }
            if en.query {
                let q = e["query"].as_str().unwrap_or("");
                need(!q.is_empty() && base64_ok(q), format!("entity {:?} query base64", en.ty));
            }
        }
    }
    bad
}

fn base64_ok(s: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// What every exported event keeps, whatever it claims: a typed source with an observer that
/// is a reference or identifier (never display only), typed agents with `requestor`, the user
/// identified in a system with a coded role, patients as object-role 1, the outcome code of the
/// ledger's outcome, and sign-in/out as DICOM 110114 with 110122/110123.
fn check_common(ev: &Value, ledger: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            bad.push(what.to_owned());
        }
    };
    let obs = &ev["source"]["observer"];
    need(obs["identifier"]["system"].is_string() || obs["reference"].is_string(), "observer identified");
    need(ev["source"]["type"][0]["code"].is_string(), "source.type");
    let agents = ev["agent"].as_array().cloned().unwrap_or_default();
    need(!agents.is_empty(), "agents");
    for a in &agents {
        need(a["type"]["coding"][0]["code"].is_string(), "agent.type coded");
        need(a["requestor"].is_boolean(), "agent.requestor");
    }
    if let Some(actor) = ledger["actor_id"].as_str() {
        let u = agents.iter().find(|a| a["who"]["identifier"]["value"] == actor);
        need(u.is_some_and(|u| u["who"]["identifier"]["system"].is_string()), "user who.identifier.system");
        need(u.is_some_and(|u| u["requestor"] == true), "user is requestor");
        need(u.is_some_and(|u| u["role"][0]["coding"][0]["code"].is_string()), "user role coded");
    }
    if let Some(ip) = ledger["client_ip"].as_str() {
        need(agents.iter().any(|a| a["network"]["address"] == ip && a["network"]["type"] == "2"), "client network");
    }
    need(agents.iter().any(|a| a["network"]["type"] == "1" && a["who"] == *obs), "server agent = observer");
    let outcome = match ledger["outcome"].as_str() {
        Some("success") => "0",
        Some("denied") => "4",
        _ => "8",
    };
    need(ev["outcome"] == outcome, "outcome code");
    let entities = ev["entity"].as_array().cloned().unwrap_or_default();
    for p in ledger["patient_id"]
        .as_str()
        .into_iter()
        .chain(ledger["patient_ids"].as_array().into_iter().flatten().filter_map(Value::as_str))
    {
        let e = entities.iter().find(|e| e["what"]["reference"] == format!("Patient/{p}"));
        need(
            e.is_some_and(|e| has(&e["type"], (ENTITY_TYPE, "1")) && has(&e["role"], (OBJECT_ROLE, "1"))),
            "patient entity",
        );
    }
    if let Some(req) = ledger["request_id"].as_str() {
        need(
            entities
                .iter()
                .any(|e| has(&e["type"], (BALP_ENTITY, "XrequestId")) && e["what"]["identifier"]["value"] == req),
            "transaction",
        );
    }
    let auth = match ledger["action"].as_str() {
        Some("login" | "login_failed" | "mfa" | "refresh") => Some("110122"),
        Some("logout") => Some("110123"),
        _ => None,
    };
    if let Some(sub) = auth {
        need(has(&ev["type"], (DCM, "110114")) && has(&ev["subtype"][0], (DCM, sub)), "110114 with its subtype");
        need(ev["action"] == "E", "authentication action E");
    }
    // No id is typed as something it is not: each data entity's system is its resource type.
    let users: BTreeSet<&str> = [ledger["actor_id"].as_str()].into_iter().flatten().collect();
    for e in &entities {
        if e["what"]["identifier"]["system"].as_str().is_some_and(|s| s.ends_with("/organization")) {
            need(
                !users.contains(e["what"]["identifier"]["value"].as_str().unwrap_or("")),
                "user labelled organization",
            );
        }
    }
    bad
}

async fn fetch(app: &TestApp, path: &str, token: &str) -> String {
    let resp = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

/// Exports `ledger` as FHIR and NDJSON, checks every event, returns the profiles claimed.
async fn export_and_check(app: &TestApp, token: &str, ledger: &str, rules: &[Rule]) -> BTreeMap<String, usize> {
    let fhir = fetch(app, &format!("/v1/audit/export?format=fhir&ledger={ledger}"), token).await;
    let ndjson = fetch(app, &format!("/v1/audit/export?format=ndjson&ledger={ledger}"), token).await;
    if let Ok(dir) = std::env::var("CUSTOS_FHIR_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/audit-{ledger}.json"), &fhir).unwrap();
    }
    let by_id: BTreeMap<String, Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| (e["event_id"].as_str().unwrap().to_owned(), e))
        .collect();
    let bundle: Value = serde_json::from_str(&fhir).unwrap();
    let mut claimed = BTreeMap::new();
    let mut failures = Vec::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let ev = &entry["resource"];
        let ledger_ev = &by_id[ev["id"].as_str().unwrap()];
        let what = format!("{} {} {}", ledger_ev["action"], ledger_ev["resource_type"], ledger_ev["outcome"]);
        for v in check_common(ev, ledger_ev) {
            failures.push(format!("{what}: {v}\n{ev}"));
        }
        for p in ev["meta"]["profile"].as_array().into_iter().flatten() {
            let name = p.as_str().unwrap().strip_prefix(PROFILE).expect("a BALP profile");
            let rule = rules.iter().find(|r| r.profile == name).unwrap_or_else(|| panic!("no rule for {name}"));
            for v in check(rule, ev) {
                failures.push(format!("{what} claims {name}: {v}\n{ev}"));
            }
            *claimed.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    assert!(failures.is_empty(), "{} BALP violations:\n{}", failures.len(), failures.join("\n"));
    claimed
}

#[tokio::test]
async fn every_exported_audit_event_meets_its_balp_profile() {
    let (app, w) = setup().await;
    // Bootstrap, first sign-in, password change, MFA enrolment, sign-out, sign-in with MFA.
    let (org, email, otp) = app.bootstrap("BALP Hospital", "admin@balp.example").await;
    let admin = app.onboard(&email, &otp).await;
    let (s, _) = app.post("/v1/auth/login", None, json!({"email": email, "password": "wrong password!"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Org A: break-glass, reads, list reads, creates, updates, deletes, a printed prescription.
    let p1 = w.p1;
    let bg = json!({ "reason": "patient unconscious in the emergency department" });
    assert_eq!(
        call(&app, "POST", &format!("/v1/patients/{p1}/break-glass"), &w.ca2, Some(bg)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{p1}"), &w.ca2, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{p1}"), &w.ca1, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/v1/patients", &w.ca1, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{p1}/allergies"), &w.ca1, None).await.0, StatusCode::OK);
    let allergy = json!({ "substance": "penicillin", "reaction": "hives", "severity": "moderate" });
    let (s, b) = call(&app, "POST", &format!("/v1/patients/{p1}/allergies"), &w.ca1, Some(allergy)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) =
        call(&app, "PUT", &format!("/v1/patients/{p1}/medical-info"), &w.ca1, Some(json!({"blood_type": "o_pos"})))
            .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rx = json!({ "medication": "amoxicillin", "dose": "500 mg", "quantity": 30, "refills_allowed": 1, "instructions": "1 cap tid" });
    let (s, rx) = call(&app, "POST", &format!("/v1/patients/{p1}/prescriptions"), &w.ca1, Some(rx)).await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    let rx_id = rx["id"].as_str().unwrap();
    let pdf = app.client.get(app.url(&format!("/v1/prescriptions/{rx_id}.pdf"))).bearer_auth(&w.ca1.token).send().await;
    assert_eq!(pdf.unwrap().status(), StatusCode::OK);
    let del = format!("/v1/patients/{}/care-team/{}", w.p2, w.ca1.id);
    let (s, b) = call(&app, "DELETE", &del, &w.aa, None).await;
    assert!(s.is_success(), "{s} {b}");
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{}", w.p2), &w.ca1, None).await.0, StatusCode::NOT_FOUND);
    // A refused delete (outcome denied: no profile, the common rules still hold).
    let (s, _) = call(&app, "DELETE", &format!("/v1/patients/{p1}/care-team/{}", w.ca1.id), &w.ca1, None).await;
    assert!(s.is_client_error(), "{s}");
    // An export first, so the exported ledgers hold export events too.
    fetch(&app, "/v1/audit/export?format=ndjson", &w.ua.token).await;
    fetch(&app, "/v1/audit/export?format=ndjson", &admin.access).await;
    let (s, _) = app.post("/v1/auth/logout", Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let admin = app.login_mfa(&email, &admin.password, &admin.secret).await;
    drain(&app).await;

    let rules = rules();
    let mut claimed = export_and_check(&app, &w.ua.token, &w.org_a.to_string(), &rules).await;
    for (k, v) in export_and_check(&app, &admin.access, &org, &rules).await {
        *claimed.entry(k).or_insert(0) += v;
    }
    for profile in
        ["PatientRead", "PatientQuery", "Query", "PatientCreate", "PatientUpdate", "PrivacyDisclosure.Source"]
    {
        assert!(claimed.contains_key(profile), "the run has a {profile} event: {claimed:?}");
    }
}
