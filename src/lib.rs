//! Custos: a HIPAA-focused audit and compliance backend. Clinical data behind PostgreSQL
//! row-level security, sealed fields, and an append-only audit ledger.
#![forbid(unsafe_code)]

/// The ledger: audit events, the in-transaction writer.
pub mod audit;
/// Identity: passwords, TOTP, tokens, sessions, logins, the `AuthUser` extractor.
pub mod auth;
/// Command-line entry points (serve, migrate, bootstrap), reusing the library.
pub mod cli;
/// Clinical records: patients, chart, prescriptions, case flow, attachments, care teams.
pub mod clinical;
/// The server's clock (wall clock plus a test-only offset).
pub mod clock;
/// Typed settings from the environment.
pub mod config;
/// Field encryption: KEK → wrapped data keys, sealing, blind indexes.
pub mod crypto;
/// Pool, local database discovery, migrations + policies, claims-carrying transactions.
pub mod db;
/// Deterministic synthetic legacy exports (`custos demo generate`).
pub mod demo;
/// Parse-don't-validate domain types (Email, Mrn, Icd10Code, ...).
pub mod domain;
/// The HTTP error type and its mapping to status codes.
pub mod error;
/// Legacy MongoDB import with a no-data-loss report.
pub mod import;
/// Root key material (KEK, JWT and ledger signing keys), development key generation.
pub mod keys;
/// Prometheus recorder and request metrics.
pub mod metrics;
/// Request id, access log, security headers, JSON error bodies.
pub mod middleware;
/// Privacy monitoring: explanations of every access, detectors, the engine, the review queue.
pub mod monitoring;
/// HTTP routes.
pub mod routes;
/// Application assembly: server, state, TLS, graceful shutdown.
pub mod startup;
/// Logging setup and span-preserving blocking tasks.
pub mod telemetry;
