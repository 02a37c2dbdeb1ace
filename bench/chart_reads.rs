//! Chart-read benchmark: what do HTTP, JWT, the session check, RLS, decryption and JSON cost
//! on top of the database work of an audited chart read?
//!
//! Run (release build, needs the local PostgreSQL the tests use and `pgbench` on the PATH):
//!
//! ```text
//! cargo bench --bench chart_reads
//! ```
//!
//! On a fresh database it starts the real server in-process (default settings: actix workers
//! = CPUs, `CUSTOS_DB_MAX_CONNECTIONS` pooled connections), creates a clinician and, through
//! the API, a patient whose chart holds medical info, 10 allergies, 10 medications, 10
//! history rows and 3 prescriptions. Then, for each concurrency (`BENCH_CLIENTS`, default
//! `8,32`):
//! 1. baseline: `pgbench` (prepared statements, same concurrency, as the superuser so no RLS)
//!    runs the chart's SELECTs and the audit INSERT in one transaction, one statement per
//!    round trip;
//! 2. the same script with the six SELECTs in one pipeline (`\startpipeline`), as the server
//!    sends them: the server's ratio to this one says how much of its figure is owed to
//!    pipelining rather than to its own overhead being small;
//! 3. `GET /v1/patients/{id}` from as many keep-alive HTTP connections — `wrk` when it is on the
//!    PATH (a C load generator, like pgbench's client), else reqwest clients in this process
//!    (`BENCH_LOADGEN=reqwest` forces them) — each client with its own session.
//!
//! Each phase runs `BENCH_SECS` (default 20) after a short warm-up, and prints requests/s,
//! p50/p99, the ratio to the baseline, and where the machine's CPU went per transaction
//! (PostgreSQL, the server's actix workers, the load generator; from /proc). `BENCH_RLS=1`
//! adds the baseline script as `custos_app` with the clinician's claims, i.e. the database's
//! share of the overhead (RLS) without any of the application's. `BENCH_KEEP=1` keeps the
//! database afterwards (its name is printed) for poking at with psql/pgbench;
//! `BENCH_VERBOSE=1` prints wrk's full report. The load generator shares the machine with the
//! server and PostgreSQL, as pgbench does; read the load average it prints before comparing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos::auth::tokens::JwtKeys;
use custos::clock::Clock;
use custos::config::Settings;
use custos::crypto::{BlindIndexKind, Kek};
use custos::keys::RootKeys;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

const ROWS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("CUSTOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("custos_bench_{}", Uuid::new_v4().simple());
    let admin: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let db = admin.clone().database(&name);
    let result = run(db.to_url_lossy().to_string(), &db).await;
    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!("kept database {name}");
        return result;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await?;
    result
}

struct Fixture {
    base: String,
    patient: Uuid,
    clinician: Uuid,
    org: Uuid,
    /// One token per client, each on its own session (as real clients would be).
    tokens: Vec<String>,
}

async fn run(url: String, db: &sqlx::postgres::PgConnectOptions) -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let with_rls = std::env::var("BENCH_RLS").is_ok_and(|v| v == "1");
    let settings = Settings::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "CUSTOS_BIND" => Some("127.0.0.1:0".into()),
        "CUSTOS_LOG" => Some("warn".into()),
        _ => std::env::var(k).ok(),
    })?;
    let db_url = settings.database_url.clone().ok_or_else(|| anyhow::anyhow!("DATABASE_URL"))?;
    let pool_size = settings.db_max_connections;
    let pool = custos::db::connect(&db_url, pool_size).await?;
    custos::db::migrate::run(&pool).await?;
    let keys = RootKeys::random();
    let app =
        custos::startup::Application::build_with_clock(settings, pool.clone(), keys.clone(), Arc::new(Clock::system()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    // BENCH_CLIENTS=8,32 (the default) picks the concurrencies.
    let concurrency: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "8,32".into())
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()?;
    let fx = seed(&pool, &keys, base, concurrency.iter().copied().max().unwrap_or(32)).await?;

    println!(
        "chart reads: GET /v1/patients/{{id}} ({ROWS} allergies, {ROWS} medications, {ROWS} history rows, 3 prescriptions), \
         {} CPUs, pool {pool_size}, {secs} s per phase",
        std::thread::available_parallelism()?.get()
    );
    println!("HTTP load generator: {}", loadgen()?);
    println!("load average before: {}", loadavg());
    for &c in &concurrency {
        let base = pgbench(db, &fx, c, secs, Script::Baseline)?;
        let piped = pgbench(db, &fx, c, secs, Script::Pipelined)?;
        let rls = if with_rls { Some(pgbench(db, &fx, c, secs, Script::RlsOn)?) } else { None };
        let http = http(&fx, c, secs).await?;
        let line = |what: &str, f: &Figures, ratios: &str| {
            println!(
                "  {c:>2} clients  {what:<28} {:>7.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {ratios}",
                f.rate, f.p50, f.p99
            );
            println!("{:16}{}", "", f.cpu.per(f.rate * secs as f64));
        };
        line("pgbench (baseline)", &base, "");
        line("pgbench, SELECTs pipelined", &piped, &format!("ratio {:.2}", piped.rate / base.rate));
        if let Some(rls) = rls {
            line("pgbench, RLS on", &rls, &format!("ratio {:.2}", rls.rate / base.rate));
        }
        let ratios =
            format!("ratio {:.2} (to the pipelined pgbench: {:.2})", http.rate / base.rate, http.rate / piped.rate);
        line("GET /v1/patients/{id}", &http, &ratios);
    }
    println!("load average after: {}", loadavg());
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A clinician with one live, MFA-verified session per client (inserted directly, as the
/// tests do), and a patient whose chart is filled through the API.
async fn seed(pool: &PgPool, keys: &RootKeys, base: String, sessions: usize) -> anyhow::Result<Fixture> {
    let kek = Kek::from_bytes(*keys.kek.expose());
    let fc = custos::crypto::store::load(pool, &kek).await?;
    let org: Uuid =
        sqlx::query_scalar("INSERT INTO organizations (name) VALUES ('Bench') RETURNING id").fetch_one(pool).await?;
    let clinician = Uuid::now_v7();
    let email = "doc@bench.example";
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash) \
         VALUES ($1, $2, 'clinician', $3, $4, '$argon2id$bench')",
    )
    .bind(clinician)
    .bind(org)
    .bind(fc.keyring.seal_str("users", "email_enc", clinician, email)?)
    .bind(&fc.blind.index(BlindIndexKind::Email, email)[..])
    .execute(pool)
    .await?;
    let jwt = JwtKeys::from_seed(keys.jwt_signing.expose(), "custos", "custos-api")?;
    let now = chrono::Utc::now().timestamp();
    let mut tokens = Vec::new();
    for _ in 0..sessions {
        let sid: Uuid = sqlx::query_scalar(
            "INSERT INTO sessions (org_id, user_id, mfa_verified, expires_at) \
             VALUES ($1, $2, true, now() + interval '4 hours') RETURNING id",
        )
        .bind(org)
        .bind(clinician)
        .fetch_one(pool)
        .await?;
        tokens.push(jwt.issue(&jwt.claims(clinician, sid, org, "clinician", now, 600))?);
    }

    let client = reqwest::Client::new();
    let token = tokens[0].clone();
    let post = async |path: String, body: Value| -> anyhow::Result<Value> {
        let r = client.post(format!("{base}{path}")).bearer_auth(&token).json(&body).send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    };
    let patient = post(
        "/v1/patients".into(),
        json!({ "mrn": "BENCH-1", "given_name": "Bench", "family_name": "Patient", "birth_date": "1970-01-01",
                "sex": "female", "phone": "+1 555 0100", "email": "bench@mail.example", "address": "1 Main St" }),
    )
    .await?;
    let p: Uuid = patient["id"].as_str().unwrap_or_default().parse()?;
    let put = client
        .put(format!("{base}/v1/patients/{p}/medical-info"))
        .bearer_auth(&token)
        .json(&json!({ "blood_type": "A+", "height_cm": 170, "weight_kg": 70, "emergency_contact": "Sam, 555 0101" }))
        .send()
        .await?;
    anyhow::ensure!(put.status().is_success(), "medical info: {}", put.status());
    for i in 0..ROWS {
        post(
            format!("/v1/patients/{p}/allergies"),
            json!({ "substance": format!("substance {i}"), "reaction": "hives and itching", "severity": "moderate" }),
        )
        .await?;
        post(
            format!("/v1/patients/{p}/medications"),
            json!({ "name": format!("drug {i}"), "dose": 10, "unit": "mg", "route": "oral", "frequency": "daily",
                    "start_date": "2024-01-01", "notes": "take with food" }),
        )
        .await?;
        post(
            format!("/v1/patients/{p}/history"),
            json!({ "icd10_code": "E11.9", "description": format!("diagnosis {i}"), "diagnosed_on": "2023-05-01",
                    "notes": "diet and exercise first" }),
        )
        .await?;
    }
    for i in 0..3 {
        post(
            format!("/v1/patients/{p}/prescriptions"),
            json!({ "medication": format!("rx {i}"), "dose": "500 mg", "quantity": 30, "refills_allowed": 2,
                    "instructions": "one tablet twice daily" }),
        )
        .await?;
    }
    Ok(Fixture { base, patient: p, clinician, org, tokens })
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    /// Where the machine's CPU went during the measured run.
    cpu: CpuUse,
}

/// CPU time (clock ticks, from /proc) spent during a run by PostgreSQL (every postgres
/// process, plus what the postmaster's exited children used: pgbench's backends end with
/// it), this process's actix workers (the server), this process's other threads (the main
/// runtime, the blocking pool, the in-process load generator), the load generator process
/// (pgbench or wrk, a waited-for child), and the whole machine (busy time; the rest is the
/// kernel's own work and anything else running).
#[derive(Clone, Copy, Default)]
struct CpuUse {
    pg: u64,
    server: u64,
    process_other: u64,
    loadgen: u64,
    machine: u64,
}

impl CpuUse {
    fn snapshot() -> Self {
        // utime + stime are fields 14 and 15, cutime + cstime (waited-for children) 16 and 17.
        let ticks = |stat: &str, fields_from: usize| -> u64 {
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
            (fields_from..fields_from + 2).filter_map(|i| fields.get(i)?.parse::<u64>().ok()).sum()
        };
        let own =
            |path: &std::path::Path| std::fs::read_to_string(path.join("stat")).map(|s| ticks(&s, 11)).unwrap_or(0);
        let children =
            |path: &std::path::Path| std::fs::read_to_string(path.join("stat")).map(|s| ticks(&s, 13)).unwrap_or(0);
        let mut cpu = Self::default();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(cmd) = std::fs::read(path.join("cmdline")) else { continue };
            if cmd.starts_with(b"postgres: ") {
                cpu.pg += own(&path);
            } else if cmd.split(|&b| b == 0).next().is_some_and(|exe| exe.ends_with(b"/postgres")) {
                cpu.pg += own(&path) + children(&path);
            }
        }
        cpu.loadgen = children(std::path::Path::new("/proc/self"));
        for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
            let path = entry.path();
            let t = own(&path);
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.starts_with("actix") { cpu.server += t } else { cpu.process_other += t }
        }
        // "cpu  user nice system idle iowait irq softirq steal ...": busy = all but idle,
        // iowait and steal.
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        cpu.machine = [0, 1, 2, 5, 6].iter().filter_map(|&i| f.get(i)).sum();
        cpu
    }

    fn since(self, before: Self) -> Self {
        Self {
            pg: self.pg.saturating_sub(before.pg),
            server: self.server.saturating_sub(before.server),
            process_other: self.process_other.saturating_sub(before.process_other),
            loadgen: self.loadgen.saturating_sub(before.loadgen),
            machine: self.machine.saturating_sub(before.machine),
        }
    }

    /// "machine 1.23 = PostgreSQL 0.80 + server 0.30 + …" in ms of CPU per transaction.
    fn per(self, count: f64) -> String {
        let hz = 100.0; // USER_HZ on Linux
        let ms = |t: u64| t as f64 / hz * 1000.0 / count.max(1.0);
        let rest = self.machine.saturating_sub(self.pg + self.server + self.process_other + self.loadgen);
        format!(
            "CPU ms per tx: machine {:.2} = PostgreSQL {:.2} + server {:.2} + load generator {:.2} + other bench threads {:.2} + rest {:.2}",
            ms(self.machine),
            ms(self.pg),
            ms(self.server),
            ms(self.loadgen),
            ms(self.process_other),
            ms(rest)
        )
    }
}

fn percentiles(mut lat_ms: Vec<f64>, elapsed: Duration) -> Figures {
    lat_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((lat_ms.len() as f64 - 1.0) * p).round() as usize;
        lat_ms.get(i).copied().unwrap_or(0.0)
    };
    Figures {
        rate: lat_ms.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        cpu: CpuUse::default(),
    }
}

/// The chart's database work, as the request runs it (src/clinical/{patients,chart,
/// allergies,medications,history,prescriptions}.rs, src/audit/writer.rs), minus RLS.
const PGBENCH_SCRIPT: &str = r"BEGIN;
SELECT id, user_id, mrn_enc, given_name_enc, family_name_enc, birth_date_enc, sex::text AS sex, phone_enc, email_enc, address_enc, created_at FROM patients WHERE id = CAST(:pid AS uuid);
SELECT id, blood_type::text, height_cm::float8, weight_kg::float8, emergency_contact_enc FROM patient_medical_info WHERE patient_id = CAST(:pid AS uuid);
SELECT id, patient_id, substance, reaction_enc, severity::text AS severity, status::text AS status, created_at FROM allergies WHERE patient_id = CAST(:pid AS uuid) AND (NOT true OR status = 'active') AND (CAST(NULL AS timestamptz) IS NULL) ORDER BY created_at, id LIMIT 101;
SELECT id, patient_id, name, dose::float8 AS dose, unit, route::text AS route, frequency, start_date, end_date, status::text AS status, notes_enc, created_at FROM medications WHERE patient_id = CAST(:pid AS uuid) AND (NOT true OR status = 'active') AND (CAST(NULL AS timestamptz) IS NULL) ORDER BY created_at, id LIMIT 101;
SELECT id, patient_id, icd10_code, description, diagnosed_on, resolved_on, notes_enc, created_at FROM medical_history WHERE patient_id = CAST(:pid AS uuid) AND (CAST(NULL AS timestamptz) IS NULL) ORDER BY created_at, id LIMIT 101;
SELECT id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, refills_used, instructions_enc, issued_at, expires_at, (CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status::text END) AS status, cancelled_at, created_at FROM prescriptions WHERE patient_id = CAST(:pid AS uuid) AND (NOT true OR (status = 'active' AND expires_at > now())) AND (CAST(NULL AS timestamptz) IS NULL) ORDER BY created_at, id LIMIT 101;
INSERT INTO audit_inbox (event_id, occurred_at, org_id, actor_id, actor_role, action, resource_type, resource_ids, patient_id, outcome, request_id, client_ip, user_agent, reason, break_glass, imported) VALUES (gen_random_uuid(), clock_timestamp(), CAST(:org AS uuid), CAST(:uid AS uuid), 'clinician', 'read', 'chart', ARRAY[:pid], CAST(:pid AS uuid), 'success', gen_random_uuid(), '127.0.0.1', 'bench', NULL, false, false);
COMMIT;
";

/// Claims as the chart request's transaction sets them (src/db/tx.rs: scoped to the patient,
/// access asked once), for the `BENCH_RLS=1` run. The request sends them with its `BEGIN` in
/// one simple query; pgbench's prepared mode cannot batch, so they are one statement here
/// (the target list is evaluated left to right: the scope is entered after the claims).
const PGBENCH_CLAIMS: &str = "SELECT set_config('role', 'custos_app', true), set_config('custos.user_id', :uid, true), \
    set_config('custos.org_id', :org, true), set_config('custos.role', 'clinician', true), \
    set_config('custos.request_id', :rid, true), set_config('custos.patient_id', :pid, true), \
    custos.enter_patient_scope();\n";

#[derive(Clone, Copy)]
enum Script {
    /// [`PGBENCH_SCRIPT`]: one statement per round trip, as the superuser.
    Baseline,
    /// The same, with the six SELECTs in one pipeline (`\startpipeline`), as the server sends
    /// them: how much of the server's figure is owed to pipelining rather than to the rest
    /// being cheap.
    Pipelined,
    /// The same as the app role with the clinician's claims: RLS's share.
    RlsOn,
}

fn pgbench(
    db: &sqlx::postgres::PgConnectOptions,
    fx: &Fixture,
    clients: usize,
    secs: u64,
    which: Script,
) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!("custos_pgbench_{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("chart.sql");
    let text = match which {
        Script::Baseline => PGBENCH_SCRIPT.to_owned(),
        Script::Pipelined => PGBENCH_SCRIPT.replacen("\nSELECT ", "\n\\startpipeline\nSELECT ", 1).replacen(
            "\nINSERT INTO audit_inbox",
            "\n\\endpipeline\nINSERT INTO audit_inbox",
            1,
        ),
        // Same script, run as the app role with the clinician's claims; the audit row then
        // has to carry the claimed request id, as the inbox policy demands.
        Script::RlsOn => PGBENCH_SCRIPT
            .replacen("BEGIN;\n", &format!("BEGIN;\n{PGBENCH_CLAIMS}"), 1)
            .replace("'success', gen_random_uuid()", "'success', CAST(:rid AS uuid)"),
    };
    std::fs::write(&script, text)?;
    let threads = clients.min(std::thread::available_parallelism()?.get()).to_string();
    let common = |secs: u64, log: bool| {
        let mut cmd = std::process::Command::new("pgbench");
        cmd.current_dir(&dir)
            .args(["-n", "-M", "prepared", "-h", db.get_host(), "-p", &db.get_port().to_string()])
            .args(["-U", db.get_username(), "-c", &clients.to_string(), "-j", &threads])
            .args(["-T", &secs.to_string(), "-f"])
            .arg(&script)
            .args(["-D", &format!("pid={}", fx.patient), "-D", &format!("uid={}", fx.clinician)])
            .args(["-D", &format!("org={}", fx.org), "-D", &format!("rid={}", Uuid::nil())]);
        if log {
            cmd.args(["-l", "--log-prefix", "tx"]);
        }
        cmd.arg(db.get_database().unwrap_or("postgres"));
        cmd
    };
    let warm = common(2, false).output().map_err(|e| anyhow::anyhow!("running pgbench: {e} (install it)"))?;
    anyhow::ensure!(warm.status.success(), "pgbench: {}", String::from_utf8_lossy(&warm.stderr));
    let (started, cpu) = (Instant::now(), CpuUse::snapshot());
    let out = common(secs, true).output()?;
    let elapsed = started.elapsed();
    // pgbench's backends exit with it; give the postmaster a moment to reap them.
    std::thread::sleep(Duration::from_millis(500));
    let cpu = CpuUse::snapshot().since(cpu);
    anyhow::ensure!(out.status.success(), "pgbench: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Per-transaction log lines: client_id tx_no latency_us script_no epoch_s epoch_us.
    let mut lat = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tx.")) {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<f64>().ok()) {
                    lat.push(us / 1000.0);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut fig = Figures { cpu, ..percentiles(lat, elapsed) };
    // pgbench's own rate excludes connection set-up; prefer it when present.
    if let Some(tps) = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
    {
        fig.rate = tps;
    }
    Ok(fig)
}

/// The HTTP phase: with `wrk` on the PATH (a C load generator, as pgbench is a C client),
/// otherwise keep-alive reqwest clients in this process. `BENCH_LOADGEN=reqwest` forces the
/// latter.
async fn http(fx: &Fixture, clients: usize, secs: u64) -> anyhow::Result<Figures> {
    if loadgen()? == "wrk" { http_wrk(fx, clients, secs) } else { http_reqwest(fx, clients, secs).await }
}

fn loadgen() -> anyhow::Result<&'static str> {
    let forced = std::env::var("BENCH_LOADGEN").ok();
    let wrk_found = std::process::Command::new("wrk").arg("--version").output().is_ok();
    match forced.as_deref() {
        Some("reqwest") => Ok("reqwest"),
        Some("wrk") if !wrk_found => anyhow::bail!("BENCH_LOADGEN=wrk but wrk is not on the PATH"),
        _ if wrk_found => Ok("wrk"),
        _ => Ok("reqwest"),
    }
}

/// `wrk -c clients` on the chart URL; each request carries the next client token (per wrk
/// thread, round robin). Any non-2xx answer fails the run.
fn http_wrk(fx: &Fixture, clients: usize, secs: u64) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!("custos_wrk_{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let tokens: Vec<String> = fx.tokens.iter().take(clients).map(|t| format!("\"{t}\"")).collect();
    let script = dir.join("chart.lua");
    std::fs::write(
        &script,
        format!(
            "local tokens = {{ {} }}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  \
             return wrk.format(\"GET\", nil, {{ [\"Authorization\"] = \"Bearer \" .. tokens[(n % #tokens) + 1] }})\nend\n",
            tokens.join(", ")
        ),
    )?;
    let url = format!("{}/v1/patients/{}", fx.base, fx.patient);
    let threads = clients.min(std::thread::available_parallelism()?.get()).to_string();
    let run = |secs: u64| -> anyhow::Result<String> {
        let out = std::process::Command::new("wrk")
            .args(["-t", &threads, "-c", &clients.to_string(), "-d", &format!("{secs}s"), "--latency", "-s"])
            .arg(&script)
            .arg(&url)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(out.status.success(), "wrk: {}", String::from_utf8_lossy(&out.stderr));
        anyhow::ensure!(!text.contains("Non-2xx"), "chart reads failed under wrk:\n{text}");
        Ok(text)
    };
    run(2)?;
    let cpu = CpuUse::snapshot();
    let text = run(secs);
    let cpu = CpuUse::snapshot().since(cpu);
    let _ = std::fs::remove_dir_all(&dir);
    let text = text?;
    if std::env::var("BENCH_VERBOSE").is_ok_and(|v| v == "1") {
        println!("{text}");
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(str::trim)
    };
    let ms = |v: &str| -> Option<f64> {
        let (num, factor) = if let Some(n) = v.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = v.strip_suffix("ms") {
            (n, 1.0)
        } else {
            (v.strip_suffix('s')?, 1000.0)
        };
        num.parse::<f64>().ok().map(|x| x * factor)
    };
    let rate = field("Requests/sec:").and_then(|v| v.parse::<f64>().ok());
    let (p50, p99) = (field("50%").and_then(ms), field("99%").and_then(ms));
    match (rate, p50, p99) {
        (Some(rate), Some(p50), Some(p99)) => Ok(Figures { rate, p50, p99, cpu }),
        _ => anyhow::bail!("unexpected wrk output:\n{text}"),
    }
}

async fn http_reqwest(fx: &Fixture, clients: usize, secs: u64) -> anyhow::Result<Figures> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let url = format!("{}/v1/patients/{}", fx.base, fx.patient);
    let phase = |d: Duration| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..clients {
            let (client, url, token) = (client.clone(), url.clone(), fx.tokens[i % fx.tokens.len()].clone());
            set.spawn(async move {
                let mut lat = Vec::new();
                let started = Instant::now();
                while started.elapsed() < d {
                    let t = Instant::now();
                    let r = client.get(&url).bearer_auth(&token).send().await?;
                    let status = r.status();
                    let body = r.bytes().await?;
                    anyhow::ensure!(status.is_success(), "chart read: {status}");
                    anyhow::ensure!(body.len() > 1000, "chart too small");
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<Vec<f64>, anyhow::Error>(lat)
            });
        }
        async move {
            let started = Instant::now();
            let mut all = Vec::new();
            while let Some(r) = set.join_next().await {
                all.extend(r??);
            }
            Ok::<(Vec<f64>, Duration), anyhow::Error>((all, started.elapsed()))
        }
    };
    phase(Duration::from_secs(2)).await?;
    let cpu = CpuUse::snapshot();
    let (lat, elapsed) = phase(Duration::from_secs(secs)).await?;
    let cpu = CpuUse::snapshot().since(cpu);
    Ok(Figures { cpu, ..percentiles(lat, elapsed) })
}
