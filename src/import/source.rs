//! Streaming a `mongoexport` file in either shape it writes: one document per line (the
//! default) or one JSON array (`--jsonArray`, on one line or pretty-printed). A UTF-8 byte
//! order mark is skipped, CRLF line ends are accepted. Documents are handed out in batches
//! that close at `max_docs` documents or once they hold `max_bytes` of source text, so memory
//! follows bytes as well as documents; a single document longer than [`MAX_DOCUMENT`] is
//! skipped without being held (and rejected by the caller). The SHA-256 of the exact bytes
//! read is kept for the source digest recorded in the import's audit events.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The longest document accepted (its source text). Attachments are at most 10 MiB each,
/// ~13.4 MiB as base64; a conversation line with a few of them stays under this.
pub const MAX_DOCUMENT: usize = 64 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a file holds its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// One document per line (NDJSON, `mongoexport`'s default).
    Lines,
    /// One JSON array of documents (`mongoexport --jsonArray`).
    Array,
}

/// Why a document's text could not be handed out as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not UTF-8: the first invalid byte's offset within the document.
    Utf8 { byte: usize },
    /// Longer than [`MAX_DOCUMENT`] bytes.
    TooLong,
    /// Text after the array's closing `]`.
    AfterArray,
    /// The file ended inside the array.
    UnclosedArray,
}

/// One document of the file, as read.
pub struct RawLine {
    /// 1-based line number where the document starts.
    pub line: u64,
    /// 1-based position of the document in the file.
    pub index: u64,
    /// The document's text (empty when `unreadable`).
    pub text: String,
    /// The bytes of a document that is not UTF-8 (for the rejects file, base64).
    pub bytes: Option<Vec<u8>>,
    pub unreadable: Option<Unreadable>,
}

impl RawLine {
    /// Source bytes the document occupies in memory.
    pub fn size(&self) -> usize {
        self.text.len() + self.bytes.as_ref().map_or(0, Vec::len)
    }
}

/// What the pre-flight check found about a collection file.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub shape: Shape,
    pub len: u64,
}

/// Checks a collection file before anything is written: absent (`Ok(None)`: an empty
/// collection), or a readable regular file whose shape is recognized. The error names the
/// cause, never content.
pub fn check(path: &Path) -> Result<Option<Checked>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if !meta.is_file() {
        return Err("not a regular file (a directory?)".into());
    }
    let mut head = Vec::with_capacity(4096);
    File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head)).map_err(|e| format!("cannot read it: {e}"))?;
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err("UTF-16 encoded: mongoexport writes UTF-8; convert the file to UTF-8".into());
    }
    Ok(Some(Checked { shape: shape_of(&head), len: meta.len() }))
}

fn shape_of(head: &[u8]) -> Shape {
    let body = head.strip_prefix(BOM).unwrap_or(head);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Shape::Array,
        _ => Shape::Lines,
    }
}

/// Array-reading state.
#[derive(PartialEq, Eq)]
enum ArrayState {
    /// Before the opening `[`.
    Start,
    /// Inside the array, before the next element.
    Inside,
    /// After the closing `]`.
    Done,
}

pub struct Source {
    reader: BufReader<File>,
    pub shape: Shape,
    /// Lines started so far (1-based number of the current line).
    line: u64,
    index: u64,
    hasher: Sha256,
    pub bytes_read: u64,
    pub len: u64,
    at_start: bool,
    array: ArrayState,
    buf: Vec<u8>,
}

impl Source {
    /// Opens a file [`check`] accepted.
    pub fn open(path: &Path, checked: Checked) -> std::io::Result<Self> {
        let file = File::open(path)?;
        Ok(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            shape: checked.shape,
            line: 1,
            index: 0,
            hasher: Sha256::new(),
            bytes_read: 0,
            len: checked.len,
            at_start: true,
            array: ArrayState::Start,
            buf: Vec::new(),
        })
    }

    /// Documents until `max_docs` or at least `max_bytes` of text; empty at the end.
    pub fn next_batch(&mut self, max_docs: usize, max_bytes: usize) -> std::io::Result<Vec<RawLine>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < max_docs && bytes < max_bytes {
            let Some(doc) = self.next_document()? else { break };
            bytes += doc.size();
            out.push(doc);
        }
        Ok(out)
    }

    fn next_document(&mut self) -> std::io::Result<Option<RawLine>> {
        match self.shape {
            Shape::Lines => self.next_line(),
            Shape::Array => self.next_element(),
        }
    }

    /// Consumes `n` buffered bytes, hashing them.
    fn consume(&mut self, n: usize) {
        let data = self.reader.buffer();
        self.hasher.update(&data[..n]);
        self.bytes_read += n as u64;
        self.reader.consume(n);
    }

    /// Skips a byte order mark at the very start of the file.
    fn skip_bom(&mut self) -> std::io::Result<()> {
        if self.at_start {
            self.at_start = false;
            let data = self.reader.fill_buf()?;
            if data.starts_with(BOM) {
                self.consume(BOM.len());
            }
        }
        Ok(())
    }

    /// The next non-blank line (line break and a preceding `\r` removed).
    fn next_line(&mut self) -> std::io::Result<Option<RawLine>> {
        self.skip_bom()?;
        loop {
            self.buf.clear();
            let mut too_long = false;
            let mut any = false;
            loop {
                let data = self.reader.fill_buf()?;
                if data.is_empty() {
                    break;
                }
                any = true;
                let (take, end) = match data.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (data.len(), false),
                };
                if !too_long {
                    if self.buf.len() + take > MAX_DOCUMENT + 2 {
                        too_long = true;
                        self.buf.clear();
                    } else {
                        self.buf.extend_from_slice(&data[..take]);
                    }
                }
                self.consume(take);
                if end {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            let line = self.line;
            self.line += 1;
            if too_long {
                self.index += 1;
                return Ok(Some(self.unreadable(line, Unreadable::TooLong)));
            }
            let mut end = self.buf.len();
            while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.index += 1;
            self.buf.truncate(end);
            return Ok(Some(self.document(line)));
        }
    }

    fn unreadable(&self, line: u64, why: Unreadable) -> RawLine {
        RawLine { line, index: self.index, text: String::new(), bytes: None, unreadable: Some(why) }
    }

    /// Turns `self.buf` into a document.
    fn document(&mut self, line: u64) -> RawLine {
        let bytes = std::mem::take(&mut self.buf);
        match String::from_utf8(bytes) {
            Ok(text) => RawLine { line, index: self.index, text, bytes: None, unreadable: None },
            Err(e) => {
                let byte = e.utf8_error().valid_up_to();
                RawLine {
                    line,
                    index: self.index,
                    text: String::new(),
                    bytes: Some(e.into_bytes()),
                    unreadable: Some(Unreadable::Utf8 { byte }),
                }
            }
        }
    }

    /// Skips white space (and, inside the array, the commas between elements), counting lines.
    fn skip_separators(&mut self, commas: bool) -> std::io::Result<Option<u8>> {
        loop {
            let data = self.reader.fill_buf()?;
            if data.is_empty() {
                return Ok(None);
            }
            let mut n = 0;
            let mut lines = 0;
            let mut next = None;
            for &b in data {
                if b == b'\n' {
                    lines += 1;
                } else if !(b.is_ascii_whitespace() || (commas && b == b',')) {
                    next = Some(b);
                    break;
                }
                n += 1;
            }
            self.line += lines;
            self.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// The next element of the array: its bytes up to the `,` or `]` that ends it at depth 0
    /// (strings and escapes are followed, so brackets inside text do not count).
    fn next_element(&mut self) -> std::io::Result<Option<RawLine>> {
        self.skip_bom()?;
        if self.array == ArrayState::Start {
            match self.skip_separators(false)? {
                Some(b'[') => {
                    self.consume(1);
                    self.array = ArrayState::Inside;
                }
                _ => {
                    self.array = ArrayState::Done;
                    return Ok(None);
                }
            }
        }
        if self.array == ArrayState::Done {
            return match self.skip_separators(false)? {
                None => Ok(None),
                Some(_) => {
                    let line = self.line;
                    self.drain()?;
                    self.index += 1;
                    Ok(Some(self.unreadable(line, Unreadable::AfterArray)))
                }
            };
        }
        match self.skip_separators(true)? {
            None => {
                self.array = ArrayState::Done;
                self.index += 1;
                return Ok(Some(self.unreadable(self.line, Unreadable::UnclosedArray)));
            }
            Some(b']') => {
                self.consume(1);
                self.array = ArrayState::Done;
                return self.next_element();
            }
            Some(_) => {}
        }
        let line = self.line;
        self.buf.clear();
        let (mut depth, mut in_string, mut escaped, mut too_long) = (0usize, false, false, false);
        let mut closed = false;
        'read: loop {
            let data = self.reader.fill_buf()?;
            if data.is_empty() {
                break;
            }
            let mut n = 0;
            let mut lines = 0;
            for &b in data {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b',' | b']' if depth == 0 => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if b == b'\n' {
                    lines += 1;
                }
                n += 1;
            }
            if !too_long {
                if self.buf.len() + n > MAX_DOCUMENT {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&data[..n]);
                }
            }
            self.line += lines;
            self.consume(n);
            if closed {
                break 'read;
            }
        }
        self.index += 1;
        if !closed {
            self.array = ArrayState::Done;
            return Ok(Some(self.unreadable(line, Unreadable::UnclosedArray)));
        }
        if too_long {
            return Ok(Some(self.unreadable(line, Unreadable::TooLong)));
        }
        while self.buf.last().is_some_and(u8::is_ascii_whitespace) {
            self.buf.pop();
        }
        Ok(Some(self.document(line)))
    }

    /// Reads (and hashes) everything left.
    fn drain(&mut self) -> std::io::Result<()> {
        loop {
            let n = self.reader.fill_buf()?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }

    /// Reads whatever is left (for the digest) and returns the file's SHA-256.
    pub fn finish(mut self) -> std::io::Result<[u8; 32]> {
        self.drain()?;
        Ok(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(content: &[u8], max_docs: usize, max_bytes: usize) -> (Shape, Vec<Vec<RawLine>>, [u8; 32]) {
        let dir = std::env::temp_dir().join(format!("custos-source-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(&path, content).unwrap();
        let checked = check(&path).unwrap().unwrap();
        let mut src = Source::open(&path, checked).unwrap();
        let mut batches = Vec::new();
        loop {
            let b = src.next_batch(max_docs, max_bytes).unwrap();
            if b.is_empty() {
                break;
            }
            batches.push(b);
        }
        let digest = src.finish().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (checked.shape, batches, digest)
    }

    fn texts(batches: &[Vec<RawLine>]) -> Vec<(u64, String)> {
        batches.iter().flatten().map(|d| (d.line, d.text.clone())).collect()
    }

    #[test]
    fn lines_with_bom_crlf_and_blank_lines() {
        let content = b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"b\":\"x]\"}\r\n";
        let (shape, batches, digest) = read_all(content, 10, 1 << 20);
        assert_eq!(shape, Shape::Lines);
        assert_eq!(texts(&batches), vec![(1, "{\"a\":1}".to_owned()), (3, "{\"b\":\"x]\"}".to_owned())]);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(content)), "the digest covers every byte");
    }

    #[test]
    fn a_json_array_on_one_line_or_pretty_with_bom() {
        let one = b"[{\"a\":1},{\"b\":\"},[\\\"\"},{\"c\":[1,2]}]\n";
        let (shape, batches, _) = read_all(one, 10, 1 << 20);
        assert_eq!(shape, Shape::Array);
        let got: Vec<String> = texts(&batches).into_iter().map(|(_, t)| t).collect();
        assert_eq!(got, ["{\"a\":1}", "{\"b\":\"},[\\\"\"}", "{\"c\":[1,2]}"]);

        let pretty = b"\xEF\xBB\xBF[\r\n  {\r\n    \"a\": 1\r\n  },\r\n  {\"b\": 2}\r\n]\r\n";
        let (shape, batches, _) = read_all(pretty, 1, 1 << 20);
        assert_eq!(shape, Shape::Array);
        assert_eq!(batches.len(), 2, "one document per batch");
        let got = texts(&batches);
        assert_eq!(got[0], (2, "{\r\n    \"a\": 1\r\n  }".to_owned()));
        assert_eq!(got[1], (5, "{\"b\": 2}".to_owned()));
        assert!(batches.iter().flatten().all(|d| d.unreadable.is_none()));
    }

    #[test]
    fn a_broken_array_reports_what_is_wrong() {
        let (_, batches, _) = read_all(b"[{\"a\":1}] trailing", 10, 1 << 20);
        let docs: Vec<&RawLine> = batches.iter().flatten().collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].unreadable, Some(Unreadable::AfterArray));
        let (_, batches, _) = read_all(b"[{\"a\":1}, {\"b\":", 10, 1 << 20);
        let docs: Vec<&RawLine> = batches.iter().flatten().collect();
        assert_eq!(docs.last().unwrap().unreadable, Some(Unreadable::UnclosedArray));
    }

    #[test]
    fn invalid_utf8_is_located_by_byte() {
        let (_, batches, _) = read_all(b"{\"a\":\"\xC3\xA9\xFF\"}\n", 10, 1 << 20);
        let doc = &batches[0][0];
        assert_eq!(doc.unreadable, Some(Unreadable::Utf8 { byte: 8 }));
        assert!(doc.bytes.is_some());
    }

    #[test]
    fn batches_close_at_the_byte_budget() {
        let line = format!("{{\"x\":\"{}\"}}\n", "a".repeat(100));
        let content = line.repeat(10);
        let (_, batches, _) = read_all(content.as_bytes(), 1000, 250);
        assert_eq!(batches.len(), 4, "3 + 3 + 3 + 1 documents of ~108 bytes under a 250-byte budget");
        assert!(batches.iter().all(|b| b.len() <= 3));
    }

    #[test]
    fn utf16_is_refused_before_reading() {
        let dir = std::env::temp_dir().join(format!("custos-source-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("u.json"), b"\xFF\xFE{\0").unwrap();
        assert!(check(&dir.join("u.json")).unwrap_err().contains("UTF-16"));
        assert!(check(&dir).unwrap_err().contains("not a regular file"));
        assert!(check(&dir.join("absent.json")).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
