//! Typed, path-aware access to the fields of one legacy document, and the tally of fields
//! the import does not know (reported, never fatal). Errors name the field path
//! (`medicalHistory[2].icd10Code`) and the rule, never the value.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::ejson::{Decoded, Problem};
use super::reject::Reason;
use crate::domain::DomainError;

/// Distinct unknown field paths remembered per collection: enough for any real schema,
/// bounded so a hostile export cannot grow memory with invented keys.
const MAX_UNKNOWN_PATHS: usize = 500;

/// Unknown field path → number of occurrences.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Unknown {
    pub fields: BTreeMap<String, u64>,
    /// Occurrences of further distinct paths beyond the cap.
    pub other: u64,
}

impl Unknown {
    fn note(&mut self, path: String) {
        if let Some(n) = self.fields.get_mut(&path) {
            *n += 1;
        } else if self.fields.len() < MAX_UNKNOWN_PATHS {
            self.fields.insert(path, 1);
        } else {
            self.other += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.fields.values().sum::<u64>() + self.other
    }
}

/// Values carried over changed (trimmed, lower-cased, re-formatted, …): field path →
/// what was done → how many times. Every entry is a normalization listed in docs/import.md's
/// mapping table; the report prints them so no value changes silently.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Normalized {
    pub fields: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

impl Normalized {
    /// Counts one `kind` of change of the field at `path` (array indices dropped).
    pub fn note(&mut self, path: &str, kind: &'static str) {
        *self.fields.entry(strip_indices(path)).or_default().entry(kind).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.fields.values().flat_map(|k| k.values()).sum()
    }
}

/// What parsing one collection's documents noticed besides errors: unknown fields and
/// normalized values. Kept for every document read, imported now or before, so a resumed
/// run reports the same tallies as one clean run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Tally {
    pub unknown: Unknown,
    pub normalized: Normalized,
}

impl Tally {
    /// Counts `kind` at `path` when the stored `after` differs from the source's `before`.
    pub fn changed(&mut self, path: &str, kind: &'static str, before: &str, after: &str) {
        if before != after {
            self.normalized.note(path, kind);
        }
    }
}

/// One JSON object of a document (the document itself or an embedded item).
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// Wraps `map` found at `path` ("" for the document) and tallies keys not in `known`.
    /// Array indices are left out of the tally path so `allergies[].x` counts once per kind.
    pub fn new(map: &'a Map<String, Value>, path: String, known: &[&str], unknown: &mut Unknown) -> Self {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let generic = strip_indices(&path);
                unknown.note(if generic.is_empty() { key.clone() } else { format!("{generic}.{key}") });
            }
        }
        Obj { map, path }
    }

    /// The path of `key` inside this object.
    pub fn path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    /// The value of `key`; absent and `null` are the same thing.
    pub fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The first present of several accepted spellings (`substance` / `allergen`).
    pub fn opt_any(&self, keys: &[&str]) -> Option<(&'a Value, String)> {
        keys.iter().find_map(|k| self.opt(k).map(|v| (v, self.path(k))))
    }

    pub fn req<T>(&self, key: &str, decode: impl Fn(&'a Value) -> Decoded<T>) -> Result<T, Reason> {
        let v = self.opt(key).ok_or_else(|| Reason::MissingField(self.path(key)))?;
        decode(v).map_err(|p| invalid(self.path(key), p))
    }

    pub fn get<T>(&self, key: &str, decode: impl Fn(&'a Value) -> Decoded<T>) -> Result<Option<T>, Reason> {
        self.opt(key).map(|v| decode(v).map_err(|p| invalid(self.path(key), p))).transpose()
    }

    pub fn get_any<T>(&self, keys: &[&str], decode: impl Fn(&'a Value) -> Decoded<T>) -> Result<Option<T>, Reason> {
        self.opt_any(keys).map(|(v, path)| decode(v).map_err(|p| invalid(path, p))).transpose()
    }

    /// A required value passed through a domain parser.
    pub fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, DomainError>) -> Result<T, Reason> {
        let s = self.req(key, super::ejson::string)?;
        parse(s).map_err(|e| domain(self.path(key), &e))
    }

    /// An optional value passed through a domain parser.
    pub fn parsed_opt<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, DomainError>,
    ) -> Result<Option<T>, Reason> {
        match self.get(key, super::ejson::string)? {
            Some(s) => parse(s).map(Some).map_err(|e| domain(self.path(key), &e)),
            None => Ok(None),
        }
    }

    /// A calendar date (see [`super::ejson::date`]); a dropped time of day is counted.
    pub fn date_opt(&self, key: &str, normalized: &mut Normalized) -> Result<Option<NaiveDate>, Reason> {
        Ok(self.get(key, super::ejson::date)?.map(|d| {
            if d.time_dropped {
                normalized.note(&self.path(key), "time of day dropped (date column)");
            }
            d.date
        }))
    }

    /// A required calendar date.
    pub fn date_req(&self, key: &str, normalized: &mut Normalized) -> Result<NaiveDate, Reason> {
        self.date_opt(key, normalized)?.ok_or_else(|| Reason::MissingField(self.path(key)))
    }

    /// The embedded items of an array field (absent = none), each wrapped with its path.
    pub fn items(&self, key: &str, known: &[&str], unknown: &mut Unknown) -> Result<Vec<Obj<'a>>, Reason> {
        let Some(v) = self.opt(key) else { return Ok(Vec::new()) };
        let arr = super::ejson::array(v).map_err(|p| invalid(self.path(key), p))?;
        let mut out = Vec::with_capacity(arr.len());
        for (i, item) in arr.iter().enumerate() {
            let path = format!("{}[{i}]", self.path(key));
            let map = super::ejson::object(item).map_err(|p| invalid(path.clone(), p))?;
            out.push(Obj::new(map, path, known, unknown));
        }
        Ok(out)
    }
}

pub fn invalid(field: String, problem: Problem) -> Reason {
    let problem = match problem {
        Problem::Expected(what) => format!("must be {what}"),
        Problem::Rule(rule) => rule,
    };
    Reason::InvalidField { field, problem }
}

pub fn domain(field: String, e: &DomainError) -> Reason {
    Reason::InvalidField { field, problem: e.rule().to_string() }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '[' => {
                skipping = true;
                out.push_str("[]");
            }
            ']' => skipping = false,
            c if !skipping => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_counted_by_generic_path() {
        let doc = json!({"a": 1, "zzz": 2, "list": [{"b": 1, "q": 1}, {"b": 2, "q": 3}]});
        let mut unknown = Unknown::default();
        let obj = Obj::new(doc.as_object().unwrap(), String::new(), &["a", "list"], &mut unknown);
        let items = obj.items("list", &["b"], &mut unknown).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(unknown.fields.get("zzz"), Some(&1));
        assert_eq!(unknown.fields.get("list[].q"), Some(&2));
        assert_eq!(items[1].path("b"), "list[1].b");
    }

    #[test]
    fn missing_and_null_are_missing_and_errors_do_not_echo_values() {
        let doc = json!({"email": null, "n": "secret-value"});
        let mut unknown = Unknown::default();
        let obj = Obj::new(doc.as_object().unwrap(), String::new(), &["email", "n"], &mut unknown);
        assert_eq!(obj.req("email", super::super::ejson::string).unwrap_err(), Reason::MissingField("email".into()));
        let err = obj.req("n", super::super::ejson::int).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
