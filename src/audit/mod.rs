//! The audit ledger. This module owns the event model and the write path: an event is
//! INSERTed into `audit_inbox` inside the caller's transaction, so the access and its record
//! commit (or roll back) together. Sequencing, hashing and checkpoints build on the inbox.

pub mod event;
pub mod writer;

pub use event::{Action, AuditContext, AuditEvent, Outcome};
pub use writer::record;
