//! Database-level tests: RLS as the app role, catalog guarantees, append-only audit tables,
//! atomicity of the audit write, idempotent migrations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod append_only;
mod atomicity;
mod catalog;
mod console_lookups;
mod constraints;
mod fixture;
mod locate;
mod migrate;
mod outbox;
mod pipeline;
mod rls_auth;
mod rls_matrix;
mod rls_writes;
