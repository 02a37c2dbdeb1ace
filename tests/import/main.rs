//! The legacy MongoDB import against a real PostgreSQL: balance, rejects, idempotency,
//! crash safety, sealed values, legacy passwords, imported activity in the audit inbox and,
//! once sequenced, verified in the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod balance;
mod crash;
mod fidelity;
mod harness;
mod ledger;
mod resume;
mod shapes;
mod values;
mod verify;
