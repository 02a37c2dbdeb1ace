//! Why a document was not imported, and the rejects file: NDJSON, one object per rejected
//! document `{collection, line, legacy_id, code, reason, raw}`, created with mode 0600
//! because `raw` is the operator's own (PHI-bearing) data. The `reason` never contains
//! document content: it names fields, rules, collections and constraints only.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A rejection reason. `Display` is the human text; [`Reason::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The line is not valid JSON.
    #[error("malformed JSON at column {column}")]
    MalformedJson { column: usize },
    /// Valid JSON, but not an object.
    #[error("the line is not a JSON document (object)")]
    NotADocument,
    #[error("missing required field `{0}`")]
    MissingField(String),
    #[error("invalid field `{field}`: {problem}")]
    InvalidField { field: String, problem: String },
    /// A reference to a document that was not imported (absent or itself rejected).
    #[error("dangling reference `{field}`: no imported document in {collection}")]
    DanglingReference { field: String, collection: &'static str },
    /// A reference to a document of the wrong kind (e.g. `doctor` naming a patient).
    #[error("reference `{field}` must name {expected}")]
    WrongReference { field: String, expected: &'static str },
    /// The same `_id` appears twice in this collection's file.
    #[error("duplicate _id in this collection (an earlier line with the same _id was imported)")]
    DuplicateId,
    /// The database refused the document (a unique or check constraint).
    #[error("refused by the database: constraint {constraint}")]
    Constraint { constraint: String },
    /// Any other database error while writing this document alone.
    #[error("database error (SQLSTATE {sqlstate})")]
    Database { sqlstate: String },
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::NotADocument => "not_a_document",
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::DanglingReference { .. } => "dangling_reference",
            Self::WrongReference { .. } => "wrong_reference",
            Self::DuplicateId => "duplicate_id",
            Self::Constraint { .. } => "constraint",
            Self::Database { .. } => "database_error",
        }
    }

    /// Classifies a database error of a single-document insert.
    pub fn from_db(e: &sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) => match d.constraint() {
                Some(c) => Self::Constraint { constraint: c.to_owned() },
                None => Self::Database { sqlstate: d.code().map(|c| c.into_owned()).unwrap_or_default() },
            },
            _ => Self::Database { sqlstate: String::new() },
        }
    }
}

/// One rejected document.
#[derive(Debug, serde::Serialize)]
pub struct RejectLine<'a> {
    pub collection: &'a str,
    pub line: u64,
    pub legacy_id: Option<&'a str>,
    pub code: &'static str,
    pub reason: String,
    pub raw: &'a str,
}

/// The rejects file (truncated at the start of each run).
pub struct RejectsFile {
    out: BufWriter<File>,
}

impl RejectsFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            opts.mode(0o600);
            let file = opts.open(path)?;
            // An existing file keeps its old mode on open: tighten it explicitly.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            return Ok(Self { out: BufWriter::new(file) });
        }
        #[allow(unreachable_code)]
        Ok(Self { out: BufWriter::new(opts.open(path)?) })
    }

    pub fn write(&mut self, line: &RejectLine<'_>) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
