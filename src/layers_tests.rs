//! The layering rule of `src/lib.rs`, enforced: the modules are declared lowest first, and no
//! file of a module may name a module declared after it (`crate::x`, `use crate::{x, …}`, or a
//! `super::` path that climbs to the crate root and down into `x`). The order is read from
//! `src/lib.rs` itself, so moving a declaration moves the rule.
//!
//! [`EXCEPTIONS`] lists the uses still open (each one a known piece of work, see
//! docs/architecture.md, "Layers"); the test fails when one of them is gone too, so the list
//! only shrinks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `(file, module it uses)`: upward uses still open.
const EXCEPTIONS: &[(&str, &str)] = &[
    // `custos demo simulate` bootstraps its organization through the CLI's bootstrap.
    ("src/demo/simulate.rs", "cli"),
];

/// The top-level modules in the order `src/lib.rs` declares them.
fn layer_order(root: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without comments (line and block), so prose naming a module is no use.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let (mut i, mut in_str) = (0, false);
    while i < bytes.len() {
        let rest = &text[i..];
        if in_str {
            if rest.starts_with("\\\"") || rest.starts_with("\\\\") {
                i += 2;
                continue;
            }
            if bytes[i] == b'"' {
                in_str = false;
            }
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        } else if rest.starts_with("'\"'") {
            out.push_str("'\"'");
            i += 3;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else {
            if bytes[i] == b'"' {
                in_str = true;
            }
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Every top-level module the code names: `crate::x`, each first segment of
/// `crate::{x, y::z}`, and `super::` chains that climb out of the file's own module.
fn used_modules(code: &str, module_path: &[String]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        used.insert(ident_at(&group[i..]).to_owned());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident_at(rest).to_owned());
        }
    }
    for (at, _) in code.match_indices("super::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        // `super` of a module `a::b` (file path segments) is `a`; climbing to the root lands in
        // whatever follows.
        if up >= module_path.len() {
            used.insert(ident_at(rest).to_owned());
        }
    }
    used
}

/// The module path of a file under `src/` (`src/auth/extractor.rs` → `[auth, extractor]`,
/// `src/auth/mod.rs` → `[auth]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if let Some(last) = segs.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            segs.push(stem.to_owned());
        }
    }
    segs
}

/// Every `(file, module)` where a file uses a module declared after its own.
fn upward_uses(root: &Path) -> BTreeSet<(String, String)> {
    let order = layer_order(root);
    assert!(order.len() > 10, "src/lib.rs declares too few modules: {order:?}");
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(root.join("src")).expect("under src").to_path_buf();
        let path = module_path(&rel);
        let Some(own) = path.first().and_then(|m| rank(m)) else { continue };
        let code = code_of(&std::fs::read_to_string(&file).expect("read"));
        for used in used_modules(&code, &path) {
            if rank(&used).is_some_and(|r| r > own) {
                found.insert((format!("src/{}", rel.display()), used));
            }
        }
    }
    found
}

#[test]
fn no_module_uses_a_module_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = upward_uses(root);
    let allowed: BTreeSet<(String, String)> =
        EXCEPTIONS.iter().map(|(f, m)| ((*f).to_owned(), (*m).to_owned())).collect();
    let new: Vec<_> = found.difference(&allowed).collect();
    let gone: Vec<_> = allowed.difference(&found).collect();
    assert!(new.is_empty(), "files using a module declared after theirs in src/lib.rs: {new:#?}");
    assert!(gone.is_empty(), "exceptions no longer needed, remove them from EXCEPTIONS: {gone:#?}");
}

#[test]
fn the_scanner_sees_every_form_of_use() {
    let p = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    let code = code_of(
        "use crate::auth::X;\n// crate::routes in a comment\nuse crate::{db::{self, a}, state, clinical::Req};\n\
         fn f() { super::super::startup::run(); crate :: x; my_crate::error; }",
    );
    let used = used_modules(&code, &p("audit::writer"));
    let want: BTreeSet<String> = ["auth", "db", "state", "clinical", "startup"].map(str::to_owned).into();
    assert_eq!(used, want);
    // One `super::` from a submodule stays inside the module.
    assert!(used_modules("use super::x;", &p("audit::writer")).is_empty());
    assert_eq!(module_path(Path::new("auth/mod.rs")), p("auth"));
}
