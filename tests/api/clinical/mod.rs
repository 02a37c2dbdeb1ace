//! The clinical API over HTTP: access matrix, rules, encryption at rest, audit completeness.

mod audit;
mod break_glass;
mod cases;
mod constraints;
mod done_when;
mod encryption;
mod flow;
mod idempotency;
mod keys;
mod matrix;
mod openapi;
mod pdf;
mod sessions;
pub mod world;
