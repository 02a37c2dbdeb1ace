//! Streaming a `mongoexport` file: one document per line, read in batches so memory follows
//! the batch size, never the file size. The SHA-256 of the exact bytes read is kept for the
//! source digest recorded in the import's audit event.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use sha2::{Digest, Sha256};

/// One line of the file, as read.
pub struct RawLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// The line without its line break (lossily decoded if it was not UTF-8).
    pub text: String,
    /// False when the bytes were not valid UTF-8 (the line is then rejected).
    pub utf8: bool,
}

pub struct Source {
    reader: BufReader<File>,
    line: u64,
    hasher: Sha256,
    pub bytes_read: u64,
    pub len: u64,
    buf: Vec<u8>,
}

impl Source {
    /// Opens `path`; `Ok(None)` when the collection's file is absent (nothing to import).
    pub fn open(path: &Path) -> std::io::Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        Ok(Some(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            line: 0,
            hasher: Sha256::new(),
            bytes_read: 0,
            len,
            buf: Vec::new(),
        }))
    }

    /// Up to `n` non-blank lines; empty at the end of the file.
    pub fn next_batch(&mut self, n: usize) -> std::io::Result<Vec<RawLine>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            self.buf.clear();
            let read = self.reader.read_until(b'\n', &mut self.buf)?;
            if read == 0 {
                break;
            }
            self.hasher.update(&self.buf);
            self.bytes_read += read as u64;
            self.line += 1;
            let mut end = self.buf.len();
            while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let bytes = &self.buf[..end];
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (text, utf8) = match std::str::from_utf8(bytes) {
                Ok(s) => (s.to_owned(), true),
                Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
            };
            out.push(RawLine { line: self.line, text, utf8 });
        }
        Ok(out)
    }

    /// Reads whatever is left (for the digest) and returns the file's SHA-256.
    pub fn finish(mut self) -> std::io::Result<[u8; 32]> {
        loop {
            self.buf.clear();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                break;
            }
            self.hasher.update(&self.buf);
        }
        Ok(self.hasher.finalize().into())
    }
}
