//! `custos demo simulate`: an organization with staff, patients, care teams, conversations and
//! prescriptions, weeks of ordinary access traffic, and injected snooping cases for every
//! privacy-monitoring detector, labelled in `labels.json` (docs/privacy-monitoring.md,
//! "Evaluation"). Deterministic for a seed (ids included).
//!
//! Ordinary traffic: day-shift clinicians read their care-team patients on weekdays, the
//! patients whose conversations they handle and those they prescribed for, plus a few
//! unexplained consults of other patients; a night shift reads its care team at night;
//! patients read their own records at any hour; admins do demographics work; an auditor reads
//! access reports. Special patients (the injected cases' targets: VIPs, the deceased, employees,
//! namesakes) are read ordinarily by their care teams only. The organization works Monday to
//! Friday 07:00–19:00 and Saturday morning, in Asia/Tokyo (no daylight saving time, so the
//! simulation can place local times without a time-zone database).
//!
//! Data rows are written on the connection as given (a development database's owner, like
//! `custos migrate`); ledger events go through the audit inbox as the `system` context and are
//! integrated by the sequencer afterwards.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::rng::Rng;
use crate::cli::CliError;
use crate::crypto::store::FieldCrypto;
use crate::crypto::{BlindIndexKind, Kek};
use crate::db::{self, Claims};
use crate::keys::RootKeys;
use crate::monitoring::normalize;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub weeks: u32,
    pub clinicians: u32,
    pub out: PathBuf,
}

/// One injected case: the alert a detector must raise (actor, and patient for per-patient
/// detectors).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Label {
    pub detector: String,
    pub actor_id: Uuid,
    pub patient_id: Option<Uuid>,
    /// A relationship explains the access, and it must still be flagged (the done-when case).
    pub explained: bool,
    pub note: String,
}

/// `labels.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Labels {
    pub seed: u64,
    pub org_id: Uuid,
    pub time_zone: String,
    pub events: u64,
    pub cases: Vec<Label>,
}

/// What was built.
#[derive(Debug)]
pub struct Simulated {
    pub org_id: Uuid,
    pub org_name: String,
    pub admin_email: String,
    pub admin_one_time_password: String,
    pub events: u64,
    pub labels: usize,
}

pub const TIME_ZONE: &str = "Asia/Tokyo";
const UTC_OFFSET_HOURS: i64 = 9;
/// A Monday.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 7).unwrap_or_default()
}

/// Local day `d` (0 = the first Monday), minute of day `m` → UTC.
fn at(d: i64, m: i64) -> DateTime<Utc> {
    let midnight = Utc.from_utc_datetime(&start().and_hms_opt(0, 0, 0).unwrap_or_default());
    midnight + Duration::days(d) + Duration::minutes(m) - Duration::hours(UTC_OFFSET_HOURS)
}

const STAFF_STEMS: &[&str] = &[
    "Ash", "Brad", "Cran", "Dun", "Ells", "Fair", "Glad", "Hart", "Ing", "Kings", "Lang", "Marl", "Notting", "Oak",
    "Pem", "Rad", "Shel", "Tad", "Upp", "Wes",
];
const PATIENT_STEMS: &[&str] = &[
    "Abbing", "Bark", "Chil", "Dar", "Eding", "Folk", "Grim", "Hadding", "Ilk", "Kel", "Lud", "Mor", "Nor", "Ols",
    "Pres", "Rams", "Stan", "Tew", "Wad", "Yar",
];
const STREETS: &[&str] = &["Maple", "Cedar", "Harbor", "Mill", "Station", "Church", "River", "Hill", "Park", "Garden"];
const SECTIONS: &[&str] = &["chart", "medication", "allergy", "diagnosis", "prescription", "medical_info"];

struct Ev {
    at: DateTime<Utc>,
    actor: Uuid,
    role: &'static str,
    action: &'static str,
    resource_type: &'static str,
    resource_ids: Vec<String>,
    patient: Option<Uuid>,
    patients: Vec<Uuid>,
    break_glass: bool,
    reason: Option<String>,
}

impl Ev {
    fn read(at: DateTime<Utc>, actor: Uuid, role: &'static str, rt: &'static str, patient: Uuid) -> Self {
        Self {
            at,
            actor,
            role,
            action: "read",
            resource_type: rt,
            resource_ids: vec![],
            patient: Some(patient),
            patients: vec![],
            break_glass: false,
            reason: None,
        }
    }
}

struct Person {
    id: Uuid,
    family: String,
    address: String,
}

struct Sim {
    rng: Rng,
    org: Uuid,
    ids: u64,
    events: Vec<Ev>,
    labels: Vec<Label>,
}

impl Sim {
    fn id(&mut self) -> Uuid {
        self.ids += 1;
        Uuid::from_u64_pair(self.rng.next_u64() ^ self.ids, (self.ids << 16) | 0x4000)
    }
    fn label(&mut self, detector: &str, actor: Uuid, patient: Option<Uuid>, explained: bool, note: &str) {
        self.labels.push(Label {
            detector: detector.into(),
            actor_id: actor,
            patient_id: patient,
            explained,
            note: note.into(),
        });
    }
    fn minute(&mut self, from_h: i64, to_h: i64) -> i64 {
        self.rng.range(from_h * 60, to_h * 60 - 1)
    }
}

/// Builds the organization and its traffic; writes `labels.json` into `opts.out`. The events
/// are left in the audit inbox for the sequencer.
pub async fn run(pool: &PgPool, keys: &RootKeys, opts: &Options) -> Result<Simulated, CliError> {
    let org_name = format!("Simulated Hospital {}", opts.seed);
    let admin_email = format!("admin-{}@simulated.example", opts.seed);
    let boot = crate::cli::bootstrap::run(pool, keys, &org_name, &admin_email).await?;
    let crypto = crate::crypto::store::load(pool, &Kek::from_bytes(*keys.kek.expose())).await.context("data keys")?;
    let mut sim = Sim { rng: Rng::new(opts.seed), org: boot.org_id, ids: 0, events: vec![], labels: vec![] };
    let w = World::build(&mut sim, opts, boot.admin_id);
    w.write(pool, &crypto, &mut sim).await?;
    w.ordinary_traffic(&mut sim, opts);
    w.inject(&mut sim);
    sim.events.sort_by_key(|e| e.at);
    let n = write_events(pool, sim.org, &sim.events).await?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let labels =
        Labels { seed: opts.seed, org_id: sim.org, time_zone: TIME_ZONE.into(), events: n, cases: sim.labels.clone() };
    let file = opts.out.join("labels.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&labels).context("labels")?)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(Simulated {
        org_id: boot.org_id,
        org_name,
        admin_email: boot.email,
        admin_one_time_password: crate::cli::bootstrap::reveal(&boot.one_time_password).to_owned(),
        events: n,
        labels: sim.labels.len(),
    })
}

/// The organization's people and relationships.
struct World {
    admins: Vec<Uuid>,
    auditor: Uuid,
    day: Vec<Person>,
    night: Vec<Person>,
    patients: Vec<Person>,
    /// Patients read only by their care teams in ordinary traffic (the injected cases' targets).
    special: HashSet<Uuid>,
    portal: Vec<(Uuid, Uuid)>,
    team: HashMap<Uuid, Vec<Uuid>>,
    on_team: HashSet<(Uuid, Uuid)>,
    handled: HashMap<Uuid, Vec<Uuid>>,
    prescribed: HashMap<Uuid, Vec<Uuid>>,
    employees: Vec<(usize, Uuid)>,
    vip: Vec<Uuid>,
    deceased: Vec<Uuid>,
    died_on: i64,
    namesakes: Vec<(usize, Uuid)>,
    housemates: Vec<(usize, Uuid)>,
    /// Day clinicians by role in the injected cases (indices into `day`).
    disabled: Vec<(usize, i64)>,
    dormant: Vec<(usize, i64)>,
    days: i64,
}

impl World {
    fn build(sim: &mut Sim, opts: &Options, admin: Uuid) -> Self {
        let n = opts.clinicians as usize;
        let nights = (n / 8).max(2);
        let person = |sim: &mut Sim, stems: &[&str], suffix: &str, street: &str| {
            let id = sim.id();
            let family = format!("{}{}", sim.rng.pick(stems), suffix);
            let address = format!("{} {} {}", sim.rng.range(1, 999), sim.rng.pick(STREETS), street);
            Person { id, family, address }
        };
        let mut day: Vec<Person> = (0..n - nights).map(|_| person(sim, STAFF_STEMS, "ley", "Lane")).collect();
        // Unique staff names: the stems × a counter keep namesakes among staff from mattering.
        for (i, p) in day.iter_mut().enumerate() {
            p.family = format!("{}{}", p.family, ["", "e", "wick", "more"][i % 4]);
        }
        let night: Vec<Person> = (0..nights).map(|_| person(sim, STAFF_STEMS, "ham", "Lane")).collect();
        let patients: Vec<Person> = (0..n * 50).map(|_| person(sim, PATIENT_STEMS, "ton", "Street")).collect();
        let auditor = sim.id();
        let admins = vec![admin, sim.id()];
        let mut w = World {
            admins,
            auditor,
            day,
            night,
            patients,
            special: HashSet::new(),
            portal: vec![],
            team: HashMap::new(),
            on_team: HashSet::new(),
            handled: HashMap::new(),
            prescribed: HashMap::new(),
            employees: vec![],
            vip: vec![],
            deceased: vec![],
            died_on: 7,
            namesakes: vec![],
            housemates: vec![],
            disabled: vec![],
            dormant: vec![],
            days: i64::from(opts.weeks) * 7,
        };
        let clinicians: Vec<Uuid> = w.day.iter().chain(&w.night).map(|p| p.id).collect();
        for (k, p) in w.patients.iter().enumerate() {
            for c in [clinicians[k % clinicians.len()], clinicians[(k * 7 + 3) % clinicians.len()]] {
                if w.on_team.insert((c, p.id)) {
                    w.team.entry(c).or_default().push(p.id);
                }
            }
        }
        // Special patients: namesakes and housemates of staff, employees' own records, VIPs, the deceased.
        let specials = |w: &mut World, sim: &mut Sim, family: Option<String>, address: Option<String>| {
            let mut p = person(sim, PATIENT_STEMS, "ton", "Street");
            if let Some(f) = family {
                p.family = f;
            }
            if let Some(a) = address {
                p.address = a;
            }
            let id = p.id;
            w.patients.push(p);
            w.special.insert(id);
            // Two day clinicians from the end of the list (never injected actors) care for them.
            let nd = w.day.len();
            for c in [w.day[nd - 1 - (id.as_u128() % 5) as usize].id, w.day[nd - 6 - (id.as_u128() % 5) as usize].id] {
                if w.on_team.insert((c, id)) {
                    w.team.entry(c).or_default().push(id);
                }
            }
            id
        };
        for i in 0..3 {
            let (f, a) = (w.day[i].family.clone(), w.day[i].address.clone());
            let p = specials(&mut w, sim, Some(f), None);
            w.namesakes.push((i, p));
            let _ = a;
            let a = w.day[3 + i].address.clone();
            let p = specials(&mut w, sim, None, Some(a));
            w.housemates.push((3 + i, p));
            let (f, a) = (w.day[6 + i].family.clone(), w.day[6 + i].address.clone());
            let p = specials(&mut w, sim, Some(f), Some(a));
            w.employees.push((6 + i, p));
            let p = specials(&mut w, sim, None, None);
            w.vip.push(p);
            let p = specials(&mut w, sim, None, None);
            w.deceased.push(p);
        }
        // The done-when case: the first namesake is on their namesake clinician's care team.
        let (c, p) = (w.day[0].id, w.namesakes[0].1);
        w.on_team.insert((c, p));
        w.team.entry(c).or_default().push(p);
        for i in 0..3 {
            w.disabled.push((12 + i, 8 + i as i64));
            w.dormant.push((15 + i, 10 + i as i64));
        }
        // Conversations handled and prescriptions written for patients off one's care team.
        let ordinary: Vec<Uuid> = w.patients.iter().map(|p| p.id).filter(|p| !w.special.contains(p)).collect();
        for c in &clinicians {
            for _ in 0..3 {
                let p = *sim.rng.pick(&ordinary);
                if !w.on_team.contains(&(*c, p)) {
                    w.handled.entry(*c).or_default().push(p);
                }
            }
            for _ in 0..2 {
                let p = *sim.rng.pick(&ordinary);
                if !w.on_team.contains(&(*c, p)) {
                    w.prescribed.entry(*c).or_default().push(p);
                }
            }
        }
        for p in ordinary.iter().step_by(20) {
            let u = sim.id();
            w.portal.push((*p, u));
        }
        w
    }

    fn ordinary(&self) -> Vec<Uuid> {
        self.patients.iter().map(|p| p.id).filter(|p| !self.special.contains(p)).collect()
    }

    /// A patient `c` has no relationship with.
    fn stranger(&self, sim: &mut Sim, c: Uuid, pool: &[Uuid]) -> Uuid {
        loop {
            let p = *sim.rng.pick(pool);
            let related = self.on_team.contains(&(c, p))
                || self.handled.get(&c).is_some_and(|v| v.contains(&p))
                || self.prescribed.get(&c).is_some_and(|v| v.contains(&p));
            if !related {
                return p;
            }
        }
    }

    async fn write(&self, pool: &PgPool, crypto: &FieldCrypto, sim: &mut Sim) -> Result<(), CliError> {
        let org = sim.org;
        let since = at(-200, 0);
        let mut tx = pool.begin().await.context("database")?;
        let seal = |t: &str, c: &str, id: Uuid, v: &str| crypto.keyring.seal_str(t, c, id, v).context("sealing");
        // Staff and portal accounts: unusable passwords (they never sign in).
        let mut users: Vec<(Uuid, &str, String)> =
            vec![(self.admins[1], "admin", "admin2".into()), (self.auditor, "auditor", "auditor".into())];
        for (i, p) in self.day.iter().chain(&self.night).enumerate() {
            users.push((p.id, "clinician", format!("clinician{i}")));
        }
        for (i, (_, u)) in self.portal.iter().enumerate() {
            users.push((*u, "patient", format!("patient{i}")));
        }
        for (id, role, local) in &users {
            let email = format!("{local}-{}@simulated.example", sim.rng.next_u64() % 1_000_000_000);
            sqlx::query(
                "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash, created_at) \
                 VALUES ($1, $2, $3::user_role, $4, $5, '$unusable$simulated', $6)",
            )
            .bind(id)
            .bind(org)
            .bind(role)
            .bind(seal("users", "email_enc", *id, &email)?)
            .bind(&crypto.blind.index(BlindIndexKind::Email, &email)[..])
            .bind(since)
            .execute(&mut *tx)
            .await
            .context("users")?;
        }
        let portal: HashMap<Uuid, Uuid> = self.portal.iter().copied().collect();
        for (k, p) in self.patients.iter().enumerate() {
            let mrn = format!("SIM{k:07}");
            sqlx::query(
                "INSERT INTO patients (id, org_id, user_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, \
                 birth_date_enc, address_enc, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(p.id)
            .bind(org)
            .bind(portal.get(&p.id))
            .bind(seal("patients", "mrn_enc", p.id, &mrn)?)
            .bind(&crypto.blind.blind_index_scoped(BlindIndexKind::Mrn.label(), org, &mrn)[..])
            .bind(seal("patients", "given_name_enc", p.id, "Alex")?)
            .bind(seal("patients", "family_name_enc", p.id, &p.family)?)
            .bind(seal("patients", "birth_date_enc", p.id, "1970-01-01")?)
            .bind(seal("patients", "address_enc", p.id, &p.address)?)
            .bind(since)
            .execute(&mut *tx)
            .await
            .context("patients")?;
        }
        for (c, p) in &self.on_team {
            sqlx::query(
                "INSERT INTO care_team_members (org_id, patient_id, clinician_id, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(org)
            .bind(p)
            .bind(c)
            .bind(since)
            .execute(&mut *tx)
            .await
            .context("care teams")?;
        }
        for (c, ps) in &self.handled {
            for p in ps {
                let id = sim.id();
                sqlx::query(
                    "INSERT INTO conversations (id, org_id, patient_id, subject_enc, status, assigned_clinician_id, created_at) \
                     VALUES ($1, $2, $3, $4, 'active', $5, $6)",
                )
                .bind(id)
                .bind(org)
                .bind(p)
                .bind(seal("conversations", "subject_enc", id, "follow-up")?)
                .bind(c)
                .bind(since)
                .execute(&mut *tx)
                .await
                .context("conversations")?;
            }
        }
        for (c, ps) in &self.prescribed {
            for p in ps {
                sqlx::query(
                    "INSERT INTO prescriptions (org_id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, \
                     issued_at, expires_at, created_at) VALUES ($1, $2, $3, 'amoxicillin', '500 mg', 30, 1, $4, $4 + interval '300 days', $4)",
                )
                .bind(org)
                .bind(p)
                .bind(c)
                .bind(at(-20, 600))
                .execute(&mut *tx)
                .await
                .context("prescriptions")?;
            }
        }
        // Staff profiles for every clinician; employees link their patient record.
        let employee_of: HashMap<usize, Uuid> = self.employees.iter().copied().collect();
        for (i, p) in self.day.iter().chain(&self.night).enumerate() {
            let fam = normalize::family_name(&p.family).unwrap_or_default();
            let addr = normalize::address(&p.address).unwrap_or_default();
            sqlx::query(
                "INSERT INTO staff_profiles (user_id, org_id, family_name_enc, family_name_bidx, address_enc, address_bidx, patient_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(p.id)
            .bind(org)
            .bind(seal("staff_profiles", "family_name_enc", p.id, &p.family)?)
            .bind(&crypto.blind.blind_index_scoped(normalize::FAMILY_NAME_KIND, org, &fam)[..])
            .bind(seal("staff_profiles", "address_enc", p.id, &p.address)?)
            .bind(&crypto.blind.blind_index_scoped(normalize::ADDRESS_KIND, org, &addr)[..])
            .bind(employee_of.get(&i))
            .execute(&mut *tx)
            .await
            .context("staff profiles")?;
        }
        for p in &self.vip {
            sqlx::query("INSERT INTO patient_flags (patient_id, org_id, confidential) VALUES ($1, $2, true)")
                .bind(p)
                .bind(org)
                .execute(&mut *tx)
                .await
                .context("flags")?;
        }
        let died = (start() + Duration::days(self.died_on)).format("%Y-%m-%d").to_string();
        for p in &self.deceased {
            sqlx::query("INSERT INTO patient_flags (patient_id, org_id, confidential, deceased_on_enc) VALUES ($1, $2, false, $3)")
                .bind(p)
                .bind(org)
                .bind(seal("patient_flags", "deceased_on_enc", *p, &died)?)
                .execute(&mut *tx)
                .await
                .context("flags")?;
        }
        sqlx::query(
            "INSERT INTO org_working_hours (org_id, time_zone, days) VALUES ($1, $2, \
             '{\"mon\": [\"07:00\", \"19:00\"], \"tue\": [\"07:00\", \"19:00\"], \"wed\": [\"07:00\", \"19:00\"], \
               \"thu\": [\"07:00\", \"19:00\"], \"fri\": [\"07:00\", \"19:00\"], \"sat\": [\"08:00\", \"12:00\"]}')",
        )
        .bind(org)
        .bind(TIME_ZONE)
        .execute(&mut *tx)
        .await
        .context("working hours")?;
        tx.commit().await.context("database")?;
        Ok(())
    }

    fn ordinary_traffic(&self, sim: &mut Sim, _opts: &Options) {
        let ordinary = self.ordinary();
        let disabled: HashMap<usize, i64> = self.disabled.iter().copied().collect();
        let dormant: HashMap<usize, i64> = self.dormant.iter().copied().collect();
        let deceased: HashSet<Uuid> = self.deceased.iter().copied().collect();
        let grace_end = self.died_on + 10;
        let usable = |p: &Uuid, d: i64| !(deceased.contains(p) && d > grace_end);
        for d in 0..self.days {
            let weekday = d % 7 < 5;
            for (i, c) in self.day.iter().enumerate() {
                if !weekday || disabled.get(&i).is_some_and(|x| d >= *x) || dormant.get(&i).is_some_and(|x| d < *x) {
                    continue;
                }
                // The disable day ends at 15:00 for them.
                let until_h = if disabled.get(&i) == Some(&d) { 15 } else { 18 };
                let team = self.team.get(&c.id).cloned().unwrap_or_default();
                for _ in 0..sim.rng.range(18, 26) {
                    let m = sim.minute(8, until_h);
                    let roll = sim.rng.below(100);
                    let p = if roll < 88 || team.is_empty() {
                        *sim.rng.pick(&team)
                    } else if roll < 93 && self.handled.contains_key(&c.id) {
                        *sim.rng.pick(&self.handled[&c.id])
                    } else if roll < 96 && self.prescribed.contains_key(&c.id) {
                        *sim.rng.pick(&self.prescribed[&c.id])
                    } else {
                        self.stranger(sim, c.id, &ordinary)
                    };
                    if !usable(&p, d) {
                        continue;
                    }
                    let rt = *sim.rng.pick(SECTIONS);
                    let mut e = Ev::read(at(d, m), c.id, "clinician", rt, p);
                    if sim.rng.chance(0.1) {
                        e.action = "create";
                    }
                    sim.events.push(e);
                }
                // One patient-list read a day: names ten care-team patients.
                let mut e = Ev::read(at(d, sim.minute(8, 9)), c.id, "clinician", "patient", Uuid::nil());
                e.patient = None;
                e.patients = (0..10).map(|_| *sim.rng.pick(&team)).filter(|p| usable(p, d)).collect();
                e.patients.sort_unstable();
                e.patients.dedup();
                sim.events.push(e);
            }
            for (i, c) in self.night.iter().enumerate() {
                if (d + i as i64) % 7 >= 5 {
                    continue;
                }
                let team = self.team.get(&c.id).cloned().unwrap_or_default();
                for _ in 0..sim.rng.range(18, 26) {
                    // 22:00 to 06:00.
                    let m = sim.rng.range(0, 8 * 60 - 1) + 22 * 60;
                    let p = *sim.rng.pick(&team);
                    if usable(&p, d) {
                        let rt = *sim.rng.pick(SECTIONS);
                        sim.events.push(Ev::read(at(d, m), c.id, "clinician", rt, p));
                    }
                }
            }
            for (p, u) in &self.portal {
                if sim.rng.chance(0.3) {
                    let m = sim.rng.range(0, 24 * 60 - 1);
                    sim.events.push(Ev::read(at(d, m), *u, "patient", "chart", *p));
                }
            }
            if weekday {
                for a in &self.admins {
                    for _ in 0..8 {
                        let p = *sim.rng.pick(&ordinary);
                        let m = sim.minute(9, 17);
                        sim.events.push(Ev::read(at(d, m), *a, "admin", "patient", p));
                    }
                }
                for _ in 0..2 {
                    let p = *sim.rng.pick(&ordinary);
                    let m = sim.minute(9, 17);
                    sim.events.push(Ev::read(at(d, m), self.auditor, "auditor", "access_report", p));
                }
            }
        }
    }

    fn inject(&self, sim: &mut Sim) {
        let ordinary = self.ordinary();
        for i in 0..3usize {
            let d = 1 + i as i64; // Tuesday to Thursday of the first week
            // same_family_name (the first: on the clinician's own care team).
            let (c, p) = (self.day[self.namesakes[i].0].id, self.namesakes[i].1);
            for k in 0..2 {
                let m = sim.minute(10, 12) + k;
                sim.events.push(Ev::read(at(d, m), c, "clinician", "chart", p));
            }
            sim.label("same_family_name", c, Some(p), i == 0, "clinician read a patient with their family name");
            let (c, p) = (self.day[self.housemates[i].0].id, self.housemates[i].1);
            let m = sim.minute(10, 12);
            sim.events.push(Ev::read(at(d + 7, m), c, "clinician", "chart", p));
            sim.label("same_address", c, Some(p), false, "clinician read a patient living at their address");
            // employee_patient: a colleague off the care team; self_access: the employee.
            let (e, p) = (self.day[self.employees[i].0].id, self.employees[i].1);
            let x = self.day[20 + i].id;
            let m = sim.minute(13, 15);
            sim.events.push(Ev::read(at(d + 14, m), x, "clinician", "diagnosis", p));
            sim.label("employee_patient", x, Some(p), false, "clinician read a colleague's record");
            let m = sim.minute(13, 15);
            sim.events.push(Ev::read(at(d + 15, m), e, "clinician", "chart", p));
            sim.label("self_access", e, Some(p), false, "employee read their own record through a staff route");
            // vip and deceased: a clinician with no relationship.
            let x = self.day[23 + i].id;
            let m = sim.minute(9, 16);
            sim.events.push(Ev::read(at(d + 1, m), x, "clinician", "chart", self.vip[i]));
            sim.label("vip", x, Some(self.vip[i]), false, "clinician read a confidential patient");
            let m = sim.minute(9, 16);
            sim.events.push(Ev::read(at(self.died_on + 2 + i as i64, m), x, "clinician", "chart", self.deceased[i]));
            sim.label("deceased", x, Some(self.deceased[i]), false, "clinician read a deceased patient");
            // after_hours: a day clinician reads a stranger at 02:30 on a weekday night.
            let c = self.day[26 + i % 3].id;
            let p = self.stranger(sim, c, &ordinary);
            sim.events.push(Ev::read(at(15 + i as i64, 150), c, "clinician", "chart", p));
            sim.label("after_hours", c, Some(p), false, "day-shift clinician read a stranger at 02:30");
            // volume_spike: 150 distinct strangers in one working day.
            let c = self.day[9 + i].id;
            let mut seen = HashSet::new();
            while seen.len() < 150 {
                let p = self.stranger(sim, c, &ordinary);
                if seen.insert(p) {
                    let m = sim.minute(9, 17);
                    sim.events.push(Ev::read(at(21 + i as i64, m), c, "clinician", "chart", p));
                }
            }
            sim.label("volume_spike", c, None, false, "clinician read 150 distinct patients in a day");
            // break_glass: a grant, then reads under it.
            let c = self.day[29 + i % 2].id;
            let p = self.stranger(sim, c, &ordinary);
            let t = at(1 + i as i64, 11 * 60);
            sim.events.push(Ev {
                action: "break_glass",
                resource_type: "break_glass_grant",
                reason: Some("emergency department: unconscious patient, allergies needed".into()),
                ..Ev::read(t, c, "clinician", "break_glass_grant", p)
            });
            for k in 1..4 {
                let mut e = Ev::read(t + Duration::minutes(5 * k), c, "clinician", "allergy", p);
                e.break_glass = true;
                sim.events.push(e);
            }
            sim.label("break_glass", c, Some(p), true, "break-glass grant and the reads under it");
            // after_disable: the admin disables at 15:00; activity after (two) or a burst before (one).
            let (ci, d) = self.disabled[i];
            let c = self.day[ci].id;
            let t = at(d, 15 * 60);
            sim.events.push(Ev {
                action: "admin",
                resource_ids: vec![c.to_string()],
                reason: Some("user disabled; 0 session(s) revoked".into()),
                patient: None,
                ..Ev::read(t, self.admins[0], "admin", "user", Uuid::nil())
            });
            let burst: Vec<(i64, Uuid)> = if i < 2 {
                (0..5).map(|k| (15 * 60 + 30 + 10 * k + 120 * i as i64, self.stranger(sim, c, &ordinary))).collect()
            } else {
                (0..10).map(|k| (11 * 60 + 10 * k, self.stranger(sim, c, &ordinary))).collect()
            };
            for (m, p) in burst {
                sim.events.push(Ev::read(at(d, m), c, "clinician", "chart", p));
            }
            sim.label("after_disable", c, None, false, "activity around an admin's disable");
            // dormant: one access 100 days before, then back on their return day.
            let (ci, back) = self.dormant[i];
            let c = self.day[ci].id;
            let p = *sim.rng.pick(self.team.get(&c).map(Vec::as_slice).unwrap_or(&ordinary));
            sim.events.push(Ev::read(at(-100, 10 * 60), c, "clinician", "chart", p));
            sim.label("dormant", c, None, false, "first access after 100 days");
            let _ = back;
        }
    }
}

/// Writes the events into the audit inbox in time order, as the `system` context of the
/// organization; returns how many.
async fn write_events(pool: &PgPool, org: Uuid, events: &[Ev]) -> Result<u64, CliError> {
    for chunk in events.chunks(5000) {
        let rows: Vec<serde_json::Value> = chunk
            .iter()
            .map(|e| {
                serde_json::json!({
                    "at": e.at, "actor": e.actor, "role": e.role, "action": e.action, "rt": e.resource_type,
                    "rids": e.resource_ids, "patient": e.patient, "bg": e.break_glass, "reason": e.reason, "pids": e.patients,
                })
            })
            .collect();
        let mut tx = db::begin(pool, &Claims::system(Some(org))).await.context("database")?;
        sqlx::query(
            "INSERT INTO audit_inbox (occurred_at, org_id, actor_id, actor_role, action, resource_type, resource_ids, \
                 patient_id, outcome, break_glass, reason, patient_ids) \
             SELECT e.at, $1, e.actor, e.role, e.action::audit_action, e.rt, \
                    ARRAY(SELECT jsonb_array_elements_text(e.rids)), e.patient, 'success', e.bg, e.reason, \
                    ARRAY(SELECT jsonb_array_elements_text(e.pids)::uuid) \
             FROM jsonb_to_recordset($2) AS e(at timestamptz, actor uuid, role text, action text, rt text, \
                  rids jsonb, patient uuid, bg boolean, reason text, pids jsonb) \
             ORDER BY e.at",
        )
        .bind(org)
        .bind(serde_json::Value::from(rows))
        .execute(&mut *tx)
        .await
        .context("audit inbox")?;
        tx.commit().await.context("database")?;
    }
    Ok(events.len() as u64)
}

/// How one detector did against the labels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectorScore {
    pub labels: usize,
    /// Labels with at least one matching alert.
    pub found: usize,
    pub alerts: usize,
    /// Alerts matching a label.
    pub true_alerts: usize,
}

impl DetectorScore {
    pub fn precision(&self) -> f64 {
        if self.alerts == 0 { 1.0 } else { self.true_alerts as f64 / self.alerts as f64 }
    }
    pub fn recall(&self) -> f64 {
        if self.labels == 0 { 1.0 } else { self.found as f64 / self.labels as f64 }
    }
}

/// The monitor's alerts scored against the labels, and the explained share.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub detectors: std::collections::BTreeMap<String, DetectorScore>,
    pub accesses: i64,
    pub explained: i64,
    /// Labels marked `explained` whose alert's evidence shows a relationship.
    pub explained_and_flagged: usize,
}

impl Evaluation {
    pub fn explained_share(&self) -> f64 {
        if self.accesses == 0 { 0.0 } else { self.explained as f64 / self.accesses as f64 }
    }
}

/// Scores the alerts of `labels.org_id` (an alert matches a label of its detector with the same
/// user and, when the label names one, the same patient).
pub async fn evaluate(pool: &PgPool, labels: &Labels) -> Result<Evaluation, sqlx::Error> {
    let alerts: Vec<(Uuid, String, Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT id, detector, actor_id, patient_id FROM monitor_alerts WHERE org_id = $1")
            .bind(labels.org_id)
            .fetch_all(pool)
            .await?;
    let mut scores: std::collections::BTreeMap<String, DetectorScore> =
        crate::monitoring::detectors::ALL.iter().map(|d| (d.code().to_owned(), DetectorScore::default())).collect();
    let matches = |l: &Label, a: &(Uuid, String, Uuid, Option<Uuid>)| {
        l.detector == a.1 && l.actor_id == a.2 && (l.patient_id.is_none() || l.patient_id == a.3)
    };
    for l in &labels.cases {
        let s = scores.entry(l.detector.clone()).or_default();
        s.labels += 1;
        s.found += usize::from(alerts.iter().any(|a| matches(l, a)));
    }
    for a in &alerts {
        let s = scores.entry(a.1.clone()).or_default();
        s.alerts += 1;
        s.true_alerts += usize::from(labels.cases.iter().any(|l| matches(l, a)));
    }
    let mut explained_and_flagged = 0;
    for l in labels.cases.iter().filter(|l| l.explained) {
        for a in alerts.iter().filter(|a| matches(l, a)) {
            let shown: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM monitor_alert_events WHERE alert_id = $1 AND explanation <> 0)",
            )
            .bind(a.0)
            .fetch_one(pool)
            .await?;
            if shown {
                explained_and_flagged += 1;
                break;
            }
        }
    }
    let (accesses, explained): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(accesses), 0)::int8, coalesce(sum(explained), 0)::int8 FROM monitor_daily_stats WHERE org_id = $1",
    )
    .bind(labels.org_id)
    .fetch_one(pool)
    .await?;
    Ok(Evaluation { detectors: scores, accesses, explained, explained_and_flagged })
}
