//! Custos: a HIPAA-focused audit and compliance backend. Clinical data behind PostgreSQL
//! row-level security, sealed fields, and an append-only audit ledger.
//!
//! Modules are listed in layer order, lowest first: `config, db, crypto, domain → audit →
//! auth → clinical → http (error, middleware, routes, startup)`, then the command line. A
//! module uses only those above it in this list (the exceptions still open are listed in
//! docs/architecture.md, "Layers"). Each declaration stands alone (blank lines between) so
//! that rustfmt keeps this order instead of sorting by name.
#![forbid(unsafe_code)]

// Foundations.

/// Typed settings from the environment.
pub mod config;

/// The server's clock (wall clock plus a test-only offset).
pub mod clock;

/// Root key material (KEK, JWT and ledger signing keys), development key generation.
pub mod keys;

/// Logging setup and span-preserving blocking tasks.
pub mod telemetry;

/// Prometheus recorder and request metrics.
pub mod metrics;

/// Pool, local database discovery, migrations + policies, claims-carrying transactions.
pub mod db;

/// Field encryption: KEK → wrapped data keys, sealing, blind indexes.
pub mod crypto;

/// Parse-don't-validate domain types (Email, Mrn, Icd10Code, ...).
pub mod domain;

// The ledger.

/// The ledger: audit events, the in-transaction writer, sequencer, proofs, verification.
pub mod audit;

// Services.

/// The state every request shares, below the services (no root keys in it).
pub mod state;

/// Identity: passwords, TOTP, tokens, sessions, logins, the caller extractors.
pub mod auth;

/// Clinical records: patients, chart, prescriptions, case flow, attachments, care teams.
pub mod clinical;

/// Privacy monitoring: explanations of every access, detectors, the engine, the review queue.
pub mod monitoring;

/// Legacy MongoDB import with a no-data-loss report.
pub mod import;

/// Deterministic synthetic legacy exports (`custos demo generate`).
pub mod demo;

// The HTTP edge.

/// The HTTP error type and its mapping to status codes.
pub mod error;

/// Request id, access log, security headers, JSON error bodies; the audit wrapper for
/// refusals and failures; Idempotency-Key replays.
pub mod middleware;

/// HTTP routes.
pub mod routes;

/// The Custos Console (`/console/`): server-rendered staff pages over the same services.
pub mod console;

/// Application assembly: server, TLS, graceful shutdown.
pub mod startup;

// Entry points.

/// Command-line entry points (serve, migrate, bootstrap), reusing the library.
pub mod cli;
