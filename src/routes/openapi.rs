//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the `#[utoipa::path]`
//! attributes on the handlers themselves and from the request/response types (utoipa), so it
//! cannot drift from the code it describes. [`StandardResponses`] adds what every operation
//! shares (the error answers of the extractors and middleware, the request headers) in one
//! place rather than on each handler.

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ContentBuilder, HttpMethod, Ref, RefOr, ResponseBuilder};

/// Every error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInner,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorInner {
    /// Stable machine-readable code: validation_failed, not_found, conflict, unauthorized, …
    pub code: String,
    /// Safe human-readable message (never PHI).
    pub message: String,
    /// For validation_failed: the offending field.
    pub field: Option<String>,
    /// For password_policy: every rule the new password broke.
    pub violations: Option<Vec<serde_json::Value>>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Custos API", version = "1", description = "HIPAA-focused clinical records and audit backend. \
        Every clinical request is authenticated (Bearer JWT bound to a live session), filtered by row-level \
        security, field-encrypted at rest, and recorded in the audit ledger. Not-found and forbidden are both 404. \
        Every answer carries `X-Request-Id` (the server's id of the request)."),
    paths(
        super::health::healthz, super::health::readyz, openapi_json,
        super::auth::login, super::auth::mfa_verify, super::auth::refresh, super::auth::logout, super::auth::register,
        super::me::me, super::me::change_password, super::me::sessions, super::me::revoke_session,
        super::me::mfa_enroll, super::me::mfa_confirm, super::me::recovery_codes,
        super::admin_users::create, super::admin_users::list, super::admin_users::act,
        super::invites::issue,
        super::patients::list, super::patients::create, super::patients::chart,
        super::records::get_medical_info, super::records::put_medical_info,
        super::records::list_allergies, super::records::create_allergy,
        super::records::list_medications, super::records::create_medication, super::records::end_medication,
        super::records::list_history, super::records::create_history,
        super::prescriptions::list, super::prescriptions::create, super::prescriptions::get,
        super::prescriptions::refill, super::prescriptions::cancel, super::prescriptions::pdf,
        super::conversations::create, super::conversations::list_for_patient, super::conversations::list,
        super::conversations::get, super::conversations::messages, super::conversations::post_message,
        super::conversations::close,
        super::attachments::upload_to_patient, super::attachments::upload_to_conversation,
        super::attachments::list, super::attachments::download,
        super::care_team::list, super::care_team::add, super::care_team::remove_by_body,
        super::care_team::remove, super::care_team::break_glass, super::care_team::reason, super::care_team::lift_limit,
        super::audit::keys, super::audit::checkpoint, super::audit::inclusion,
        super::audit::consistency, super::audit::events, super::audit_export::export, super::audit_bundle::bundle,
        super::audit::access_report, super::event_proof::proof,
        super::tiles::keys, super::tiles::checkpoint, super::tiles::tile, super::tiles::publish, super::tiles::withdraw,
    ),
    components(schemas(ErrorBody, ErrorInner)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] and the privacy-review routes (`routes::review`,
/// `routes::profiles`), with the shared responses added to both.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::review::MonitoringDoc::openapi());
    doc.merge(super::passkeys::PasskeyDoc::openapi());
    utoipa::Modify::modify(&StandardResponses, &mut doc);
    doc
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The answers and headers every operation shares, added where the handler did not document
/// them itself (idempotent: running it twice adds nothing):
/// - `503` everywhere (database unavailable, lost race; with `Retry-After`);
/// - `401` on every operation that takes a token (missing, invalid or expired), `403` on those
///   that need a full session (`password_change_required`, `mfa_enrollment_required`);
/// - `404` on every operation with a path parameter (a malformed id is "no such resource") and
///   on every clinical one (a refused role is answered as "no such resource");
/// - `400` and `422` on every operation with a query or a body (malformed query string or
///   JSON; a value that breaks a rule);
/// - `413` and `415` on every operation with a body;
/// - the `X-Request-Id` request header (the client's correlation id) everywhere, and
///   `Idempotency-Key` on every authenticated `POST` (src/middleware/idempotency.rs).
pub struct StandardResponses;

/// The clinical API, where a role that may not do something is answered 404 like a resource
/// out of reach (never a hint that it exists).
const CLINICAL: [&str; 4] = ["/v1/patients", "/v1/conversations", "/v1/prescriptions", "/v1/attachments"];

impl StandardResponses {
    fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    }

    fn add(op: &mut Operation, status: &str, description: &str) {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| Self::error(description));
    }

    fn header(op: &mut Operation, name: &str, description: &str, max: usize, pattern: &str) {
        let params = op.parameters.get_or_insert_with(Vec::new);
        if params.iter().any(|p| p.name.eq_ignore_ascii_case(name) && p.parameter_in == ParameterIn::Header) {
            return;
        }
        let schema = utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(pattern));
        let p: Parameter = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(description))
            .schema(Some(schema))
            .build();
        params.push(p);
    }
}

impl utoipa::Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let global_auth = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let methods = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Patch, &mut item.patch),
            ];
            for (method, op) in methods {
                let Some(op) = op.as_mut() else { continue };
                // `security(())` alone is a public operation; an empty requirement beside
                // a bearer one is "a token is optional" (it is then checked).
                let authenticated = match &op.security {
                    None => global_auth,
                    Some(reqs) => {
                        reqs.iter().any(|r| serde_json::to_value(r).is_ok_and(|v| v != serde_json::json!({})))
                    }
                };
                let params = op.parameters.as_deref().unwrap_or_default();
                let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
                let has_body = op.request_body.is_some();
                if authenticated {
                    Self::add(op, "401", "no valid token, or its session has ended");
                    Self::add(op, "403", "the session is restricted, or the role may not do this");
                }
                if path.contains('{') || (authenticated && CLINICAL.iter().any(|p| path.starts_with(p))) {
                    Self::add(op, "404", "no such resource, or one the caller may not see");
                }
                if has_query || has_body {
                    Self::add(op, "400", "malformed query string or body");
                    Self::add(op, "422", "a field breaks a rule (`field` names it)");
                }
                if has_body {
                    Self::add(op, "413", "body too large");
                    Self::add(op, "415", "wrong Content-Type");
                }
                Self::add(op, "503", "the database is unavailable; retry after `Retry-After` seconds");
                Self::header(
                    op,
                    "X-Request-Id",
                    "the client's own id of the request, kept as the events' correlation id (never trusted to be unique)",
                    crate::middleware::CorrelationId::MAX_LEN,
                    "^[!-~]+$",
                );
                if authenticated && method == HttpMethod::Post {
                    Self::header(
                        op,
                        "Idempotency-Key",
                        "replays the stored answer of the caller's earlier request with this key and body \
                         (24 hours); the same key with another request is 422",
                        255,
                        "^[!#-~]+$",
                    );
                    Self::add(op, "409", "a request with the same Idempotency-Key is under way");
                    Self::add(op, "422", "a malformed Idempotency-Key, or one used for another request");
                }
            }
        }
    }
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", security(()),
    responses((status = 200, body = Object, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    /// The route tables, as the server mounts them (`routes::configure` and the modules'
    /// `configure` functions it calls). `/metrics` is not here: it has a listener of its own.
    const ROUTE_TABLES: [&str; 7] = [
        include_str!("mod.rs"),
        include_str!("passkeys.rs"),
        include_str!("event_proof.rs"),
        include_str!("clinical.rs"),
        include_str!("audit.rs"),
        include_str!("tiles.rs"),
        include_str!("review.rs"),
    ];

    fn doc() -> Value {
        serde_json::to_value(super::document()).unwrap()
    }

    /// `METHOD /path` of every route in a route table: `resource("/p").route(web::get()…)`
    /// and `cfg.route("/p", web::get()…)`. Path parameters lose their regex (`{tail:.+}`).
    fn mounted(src: &str) -> BTreeSet<String> {
        let mut marks: Vec<(usize, &str)> = Vec::new();
        for pat in [
            "cfg.",
            "scope(\"",
            "resource(\"",
            ".route(\"",
            ".route(web::",
            ".route(get()",
            ".route(post()",
            ".route(put()",
            ".route(delete()",
        ] {
            marks.extend(src.match_indices(pat));
        }
        marks.sort();
        let string_at = |i: usize| src[i..].split('"').next().unwrap().to_owned();
        let method_at = |i: usize| {
            let rest = src[i..].trim_start().trim_start_matches("web::");
            rest.split('(').next().unwrap().to_uppercase()
        };
        let normalize = |p: String| {
            let mut out = String::new();
            let mut in_regex = false;
            for c in p.chars() {
                match c {
                    ':' if out.rfind('{') > out.rfind('}') => in_regex = true,
                    '}' => {
                        in_regex = false;
                        out.push(c);
                    }
                    _ if in_regex => {}
                    _ => out.push(c),
                }
            }
            out
        };
        let mut current = String::new();
        let mut prefix = String::new();
        let mut out = BTreeSet::new();
        for (i, pat) in marks {
            let after = i + pat.len();
            match pat {
                "cfg." => prefix.clear(),
                "scope(\"" => prefix = string_at(after),
                "resource(\"" => current = prefix.clone() + &normalize(string_at(after)),
                ".route(\"" => {
                    let path = normalize(string_at(after));
                    let comma = src[after..].find(',').unwrap() + after + 1;
                    out.insert(format!("{} {path}", method_at(comma)));
                }
                _ => {
                    let m = pat.trim_start_matches(".route(").trim_start_matches("web::").trim_end_matches("()");
                    let m = if m.is_empty() { method_at(after) } else { m.to_uppercase() };
                    out.insert(format!("{m} {current}"));
                }
            }
        }
        out
    }

    fn documented(doc: &Value) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    out.insert(format!("{} {path}", method.to_uppercase()), op.clone());
                }
            }
        }
        out
    }

    #[test]
    fn route_table_parser_reads_both_forms() {
        let src = r#"cfg.service(resource("/a/{x:.+}").route(web::get().to(f)).route(post().to(g)))
            .route("/b", web::delete().to(h));
            cfg.service(web::scope("/s").service(resource("/c").route(web::put().to(i))));
            cfg.service(resource("/d").route(web::get().to(j)));"#;
        let got: Vec<_> = mounted(src).into_iter().collect();
        assert_eq!(got, ["DELETE /b", "GET /a/{x}", "GET /d", "POST /a/{x}", "PUT /s/c"]);
    }

    #[test]
    fn every_mounted_route_is_documented_and_every_documented_operation_is_mounted() {
        let mounted: BTreeSet<String> = ROUTE_TABLES.iter().flat_map(|s| mounted(s)).collect();
        assert!(mounted.len() > 60, "{mounted:?}");
        let documented: BTreeSet<String> = documented(&doc()).into_keys().collect();
        let undocumented: Vec<_> = mounted.difference(&documented).collect();
        let unmounted: Vec<_> = documented.difference(&mounted).collect();
        assert!(undocumented.is_empty(), "mounted but not in /openapi.json: {undocumented:?}");
        assert!(unmounted.is_empty(), "in /openapi.json but not mounted: {unmounted:?}");
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (op, v) in documented(&doc()) {
            let id = v["operationId"].as_str().unwrap_or_else(|| panic!("{op} has no operationId")).to_owned();
            seen.entry(id).or_default().push(op);
        }
        let dup: Vec<_> = seen.iter().filter(|(_, ops)| ops.len() > 1).collect();
        assert!(dup.is_empty(), "duplicate operationIds: {dup:?}");
    }

    #[test]
    fn parameters_are_where_the_path_says() {
        for (op, v) in documented(&doc()) {
            let path = op.split_once(' ').unwrap().1;
            let vars: BTreeSet<&str> = path.split('{').skip(1).map(|s| s.split('}').next().unwrap()).collect();
            let params = v["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(in_path, vars, "{op}: path parameters");
            let mut names = BTreeSet::new();
            for p in &params {
                assert!(names.insert((p["in"].to_string(), p["name"].to_string())), "{op}: {p} twice");
            }
        }
    }

    #[test]
    fn every_body_has_a_schema_and_every_operation_its_standard_errors() {
        for (op, v) in documented(&doc()) {
            let responses = v["responses"].as_object().unwrap();
            for (status, r) in responses {
                if status == "204" {
                    assert!(r.get("content").is_none(), "{op} {status} has a body");
                    continue;
                }
                let content = r["content"].as_object().unwrap_or_else(|| panic!("{op} {status}: no content"));
                for (ctype, c) in content {
                    assert!(c.get("schema").is_some(), "{op} {status} {ctype}: no schema");
                }
            }
            if let Some(body) = v.get("requestBody") {
                for (ctype, c) in body["content"].as_object().unwrap() {
                    assert!(c.get("schema").is_some(), "{op} request {ctype}: no schema");
                }
                for s in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(s), "{op}: no {s}");
                }
            }
            assert!(responses.contains_key("503"), "{op}: no 503");
            let public = v["security"].as_array().is_some_and(|s| s.iter().all(|r| r == &serde_json::json!({})));
            assert!(public || responses.contains_key("401"), "{op}: authenticated, no 401");
            let headers: Vec<&str> = v["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "header").map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            assert!(headers.contains(&"X-Request-Id"), "{op}: no X-Request-Id");
            assert_eq!(
                headers.contains(&"Idempotency-Key"),
                op.starts_with("POST ") && !public,
                "{op}: Idempotency-Key"
            );
        }
    }

    #[test]
    fn ledger_event_schema_has_the_export_columns() {
        let doc = doc();
        // `LedgerEvent` is the event (`allOf` its own schema) plus its place and hashes.
        fn props<'d>(doc: &'d serde_json::Value, schema: &'d serde_json::Value, out: &mut BTreeSet<&'d str>) {
            if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                return props(doc, &doc["components"]["schemas"][name], out);
            }
            out.extend(schema["properties"].as_object().into_iter().flat_map(|p| p.keys().map(String::as_str)));
            for part in schema["allOf"].as_array().into_iter().flatten() {
                props(doc, part, out);
            }
        }
        let mut props_of = BTreeSet::new();
        props(&doc, &doc["components"]["schemas"]["LedgerEvent"], &mut props_of);
        let props = props_of;
        let columns: BTreeSet<&str> = crate::audit::formats::CSV_HEADER.trim().split(',').collect();
        assert_eq!(props, columns);
    }
}
