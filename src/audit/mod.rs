//! The audit ledger. An event is INSERTed into `audit_inbox` inside the caller's transaction
//! (writer), so the access and its record commit together; the sequencer moves inbox rows
//! into the append-only log with per-ledger indices, hashes (canonical, merkle) and signed
//! checkpoints (checkpoint, signing); proofs, verification and exports read it back.

pub mod batch;
pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod checkpointer;
pub mod cosignature;
pub mod event;
pub mod fhir;
pub mod formats;
pub mod merkle;
pub mod offline;
pub mod proofs;
pub mod query;
pub mod sequencer;
pub mod signing;
pub mod store;
pub mod tiles;
pub mod tlog_proof;
pub mod verify;
pub mod witness;
pub mod witnessing;
pub mod writer;

pub use event::{Action, AuditContext, AuditEvent, Outcome, Recorded};
pub use writer::record;
