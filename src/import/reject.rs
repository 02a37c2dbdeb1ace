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
    /// The document is not valid JSON: where (line within the document, column) and what
    /// the parser expected (serde_json's description, which quotes no input).
    #[error("malformed JSON at line {line} column {column} of the document: {what}")]
    MalformedJson { line: usize, column: usize, what: String },
    /// Not UTF-8 (mongoexport writes UTF-8): the offset of the first invalid byte.
    #[error("invalid UTF-8 at byte {byte} of the document")]
    InvalidUtf8 { byte: usize },
    /// Objects and arrays nested deeper than the parser's limit.
    #[error("nested deeper than {max} levels")]
    TooDeep { max: usize },
    /// Longer than the import's limit for one document.
    #[error("the document is longer than {max_bytes} bytes")]
    TooLong { max_bytes: usize },
    /// A broken `--jsonArray` file: text after the closing `]`, or no closing `]`.
    #[error("the JSON array {0}")]
    ArrayStructure(&'static str),
    /// A NUL character (`\u0000`) inside a string or key: PostgreSQL text cannot hold it.
    #[error("NUL character (\\u0000) in field `{field}`")]
    NulCharacter { field: String },
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
    /// The same `_id` appears twice in this collection's file: the first document carrying
    /// an `_id` owns it, whatever became of it; every later one is rejected.
    #[error("duplicate _id: the document at line {first_line} of this file has the same _id")]
    DuplicateId { first_line: u64 },
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
            Self::MalformedJson { .. } | Self::TooDeep { .. } | Self::ArrayStructure(_) => "malformed_json",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::TooLong { .. } => "too_long",
            Self::NulCharacter { .. } => "nul_character",
            Self::NotADocument => "not_a_document",
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::DanglingReference { .. } => "dangling_reference",
            Self::WrongReference { .. } => "wrong_reference",
            Self::DuplicateId { .. } => "duplicate_id",
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
    /// The line the document starts at.
    pub line: u64,
    /// The document's 1-based position in the file (its element number in a JSON array).
    pub index: u64,
    pub legacy_id: Option<&'a str>,
    /// For an embedded item rejected alone (its document imported): its path, e.g.
    /// `messages[3]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<&'a str>,
    pub code: &'static str,
    pub reason: String,
    /// The document's source text (absent when it is not UTF-8 or too long).
    pub raw: Option<&'a str>,
    /// The bytes of a document that is not UTF-8, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
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
