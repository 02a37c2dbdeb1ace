//! The legacy MongoDB import against a real PostgreSQL: balance, rejects, idempotency,
//! crash safety, sealed values, legacy passwords, imported activity in the audit inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod balance;
mod crash;
mod fidelity;
mod harness;
