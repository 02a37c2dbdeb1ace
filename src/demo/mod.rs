//! `custos demo generate`: a deterministic synthetic MongoDB export (what `custos import
//! mongo` reads), optionally with a share of broken documents of every kind. Beside the
//! four collection files it writes `manifest.json` (documents per file and every broken
//! document with the reject code the import must give it) and `passwords.json` (the
//! plaintext passwords of a few accounts, so tests can check that legacy logins survive).
//! All of it is invented data; the passwords file exists for tests and demos only.

mod data;
mod docs;
mod rng;
pub mod simulate;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

use self::rng::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub patients: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// Share (0..=1) of documents to break.
    pub broken_share: f64,
}

/// What was generated (also in `manifest.json`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub seed: u64,
    pub patients: u64,
    pub broken_share: f64,
    /// Lines per collection file.
    pub documents: std::collections::BTreeMap<String, u64>,
    /// Every document the import must reject, with the reject code it must give.
    pub expected_rejects: Vec<ExpectedReject>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpectedReject {
    pub collection: String,
    pub line: u64,
    pub code: String,
}

/// One account whose password is known (tests log in with it).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct KnownPassword {
    pub legacy_id: String,
    pub role: String,
    pub email: String,
    pub password: String,
}

const BCRYPT_COST: u32 = 4;
const KNOWN_PASSWORDS: u64 = 3;
const SHARED_HASHES: usize = 8;

struct Out {
    name: &'static str,
    w: BufWriter<File>,
    lines: u64,
}

impl Out {
    fn create(dir: &Path, name: &'static str) -> anyhow::Result<Self> {
        let path = dir.join(format!("{name}.json"));
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { name, w: BufWriter::new(f), lines: 0 })
    }

    fn line(&mut self, text: &str) -> anyhow::Result<u64> {
        self.w.write_all(text.as_bytes())?;
        self.w.write_all(b"\n")?;
        self.lines += 1;
        Ok(self.lines)
    }
}

/// Ways a document is broken, and the reject code each must produce.
#[derive(Clone, Copy)]
enum Break {
    Missing(&'static str),
    BadIcd,
    Malformed,
    Dangling(&'static str),
}

impl Break {
    fn code(self) -> &'static str {
        match self {
            Break::Missing(_) => "missing_field",
            Break::BadIcd => "invalid_field",
            Break::Malformed => "malformed_json",
            Break::Dangling(_) => "dangling_reference",
        }
    }
}

struct Gen {
    rng: Rng,
    seed: u64,
    share: f64,
    manifest: Manifest,
    shared: [Option<String>; SHARED_HASHES],
}

impl Gen {
    fn id(&self, coll: u8, n: u64, t: chrono::DateTime<Utc>) -> String {
        format!("{:08x}{:04x}{coll:02x}{n:010x}", t.timestamp().clamp(0, i64::from(u32::MAX)), self.seed & 0xffff)
    }

    fn choose(&mut self, kinds: &[Break]) -> Option<Break> {
        (self.share > 0.0 && self.rng.chance(self.share)).then(|| *self.rng.pick(kinds))
    }

    /// Writes `doc` (after applying `brk`); records an expected reject when the document is
    /// broken or depends on a rejected one. Returns whether the import will accept it.
    fn emit(&mut self, out: &mut Out, mut doc: Value, brk: Option<Break>, depends_ok: bool) -> anyhow::Result<bool> {
        match brk {
            Some(Break::Missing(f)) => {
                if let Some(m) = doc.as_object_mut() {
                    m.remove(f);
                }
            }
            Some(Break::BadIcd) => {
                let bad = json!({ "condition": "Unknown", "icd10Code": "9ZZ-X", "diagnosedDate": "2020-01-01" });
                if let Some(Value::Array(h)) = doc.get_mut("medicalHistory") {
                    h.push(bad);
                }
            }
            Some(Break::Dangling(f)) => {
                doc[f] = docs::oid(&format!("{:024x}", 0xdead_0000_u64 + self.rng.below(1 << 20)))
            }
            Some(Break::Malformed) | None => {}
        }
        let mut text = doc.to_string();
        if let Some(Break::Malformed) = brk {
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let line = out.line(&text)?;
        let code = match brk {
            Some(b) => Some(b.code()),
            None if !depends_ok => Some("dangling_reference"),
            None => None,
        };
        if let Some(code) = code {
            self.manifest.expected_rejects.push(ExpectedReject {
                collection: out.name.into(),
                line,
                code: code.into(),
            });
        }
        Ok(code.is_none())
    }

    fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        let salt = self.rng.bytes::<16>();
        Ok(bcrypt::hash_with_salt(password, BCRYPT_COST, salt)
            .context("bcrypt")?
            .format_for_version(bcrypt::Version::TwoB))
    }
}

fn password(seed: u64, n: u64, role: &str) -> String {
    format!("legacy-{role}-{seed}-{n}-Pw!")
}

/// Generates the export into `opts.out` and returns its manifest.
pub fn generate(opts: &Options) -> anyhow::Result<Manifest> {
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut g = Gen {
        rng: Rng::new(opts.seed),
        seed: opts.seed,
        share: opts.broken_share.clamp(0.0, 1.0),
        manifest: Manifest {
            seed: opts.seed,
            patients: opts.patients,
            broken_share: opts.broken_share,
            ..Manifest::default()
        },
        shared: Default::default(),
    };
    let mut users = Out::create(&opts.out, "users")?;
    let mut convs = Out::create(&opts.out, "conversations")?;
    let mut rx = Out::create(&opts.out, "prescriptions")?;
    let mut logs = Out::create(&opts.out, "activity_logs")?;
    let mut known = Vec::new();
    let t0 = Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).single().unwrap_or_default();

    let admins = 1 + opts.patients / 2000;
    let doctors = (opts.patients / 40).max(2);
    let mut doctor_ids = Vec::new();
    for (role, count) in [("admin", admins), ("doctor", doctors)] {
        for n in 0..count {
            let id = g.id(if role == "admin" { 1 } else { 2 }, n, t0);
            let pw = password(opts.seed, n, role);
            let hash = g.hash(&pw)?;
            let canonical = g.rng.chance(0.5);
            let (doc, email) = docs::staff(&mut g.rng, &id, role, n, &hash, canonical);
            g.emit(&mut users, doc, None, true)?;
            if n < KNOWN_PASSWORDS {
                known.push(KnownPassword { legacy_id: id.clone(), role: role.into(), email, password: pw });
            }
            if role == "doctor" {
                doctor_ids.push(id);
            }
        }
    }

    // Activity happens after all the data it refers to, in one increasing clock.
    let mut clock = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let (mut conv_n, mut rx_n, mut log_n) = (0u64, 0u64, 0u64);
    for n in 0..opts.patients {
        let pid = g.id(3, n, t0);
        let pw = password(opts.seed, n, "patient");
        let hash = if n < KNOWN_PASSWORDS || n % 50 == 0 { g.hash(&pw)? } else { shared_hash(&mut g)? };
        let canonical = g.rng.chance(0.5);
        let (doc, email, created) = docs::patient(&mut g.rng, &pid, n, &hash, canonical);
        let brk = g.choose(&[Break::Missing("email"), Break::BadIcd, Break::Malformed]);
        let patient_ok = g.emit(&mut users, doc, brk, true)?;
        if n < KNOWN_PASSWORDS && patient_ok {
            known.push(KnownPassword { legacy_id: pid.clone(), role: "patient".into(), email, password: pw });
        }
        let doctor = doctor_ids[g.rng.below(doctor_ids.len() as u64) as usize].clone();

        let mut conv_ids = Vec::new();
        for _ in 0..usize::from(g.rng.chance(0.8)) {
            let cid = g.id(4, conv_n, created);
            conv_n += 1;
            let with_doctor = g.rng.chance(0.9).then_some(doctor.as_str());
            let canonical = g.rng.chance(0.5);
            let doc = docs::conversation(&mut g.rng, &cid, &pid, with_doctor, created, canonical);
            let brk = g.choose(&[Break::Dangling("patient"), Break::Malformed, Break::Missing("patient")]);
            if g.emit(&mut convs, doc, brk, patient_ok)? {
                conv_ids.push(cid);
            }
        }
        let mut rx_ids = Vec::new();
        for _ in 0..g.rng.range(0, 2) {
            let id = g.id(5, rx_n, created);
            rx_n += 1;
            let canonical = g.rng.chance(0.5);
            let doc = docs::prescription(&mut g.rng, &id, &pid, &doctor, created, canonical);
            let brk = g.choose(&[Break::Dangling("doctor"), Break::Missing("medication")]);
            if g.emit(&mut rx, doc, brk, patient_ok)? {
                rx_ids.push(id);
            }
        }
        for _ in 0..g.rng.range(0, 3) {
            let (action, rt) = *g.rng.pick(data::ACTIONS);
            let by_doctor = matches!(action, "update_record" | "create_prescription" | "view_record");
            let user = if by_doctor { doctor.clone() } else { pid.clone() };
            let (resource, resource_ok) = match rt {
                None => (None, true),
                Some("conversation") if !conv_ids.is_empty() => (Some(("conversation", conv_ids[0].clone())), true),
                Some("prescription") if !rx_ids.is_empty() => (Some(("prescription", rx_ids[0].clone())), true),
                Some(_) => (Some(("patient", pid.clone())), patient_ok),
            };
            clock += Duration::seconds(g.rng.range(1, 90));
            let id = g.id(6, log_n, clock);
            log_n += 1;
            let canonical = g.rng.chance(0.5);
            let doc = docs::activity(
                &mut g.rng,
                &id,
                &user,
                action,
                resource.as_ref().map(|(t, r)| (*t, r.as_str())),
                clock,
                canonical,
            );
            let actor_ok = by_doctor || patient_ok;
            let brk = g.choose(&[Break::Dangling("user"), Break::Malformed]);
            g.emit(&mut logs, doc, brk, actor_ok && resource_ok)?;
        }
    }
    for out in [&mut users, &mut convs, &mut rx, &mut logs] {
        out.w.flush()?;
        g.manifest.documents.insert(out.name.into(), out.lines);
    }
    write_json(&opts.out.join("passwords.json"), &known)?;
    write_json(&opts.out.join("manifest.json"), &g.manifest)?;
    Ok(g.manifest)
}

/// Most patients share one of a few pre-computed hashes: bcrypt per account would make a
/// 100 000-patient export take minutes to generate without making the import any different.
fn shared_hash(g: &mut Gen) -> anyhow::Result<String> {
    let idx = g.rng.below(SHARED_HASHES as u64) as usize;
    if let Some(h) = &g.shared[idx] {
        return Ok(h.clone());
    }
    let h = g.hash(&format!("shared-{idx}"))?;
    g.shared[idx] = Some(h.clone());
    Ok(h)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    serde_json::to_writer_pretty(BufWriter::new(f), value)?;
    Ok(())
}
