//! Black-box tests over HTTP: the real server on port 0 against a fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod audit;
mod basics;
mod cli;
pub mod clinical;
mod console_passkeys;
mod done_when;
mod every_operation;
mod faults;
mod hardening;
mod helpers;
mod invites;
mod jwt;
mod login;
mod metrics;
mod mfa;
mod passkeys;
mod production;
mod review;
mod review_sim;
mod sessions;
