//! `custos witness`: a C2SP tlog-witness (c2sp.org/tlog-witness) that an auditor or a partner
//! hospital runs on its own machine, with its own key and its own state file, for the Custos
//! ledgers it is told about (docs/witness.md). The logic is `audit::witness`; this is the
//! HTTP face: `POST /add-checkpoint` and `GET /<hex SHA-256 of origin>/checkpoint`.
//!
//! `custos witness keygen --name NAME` prints a new private key (keep it in a file readable
//! only by the witness) and its public vkey (give it to the log operators and verifiers).

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::audit::checkpoint::NoteVerifier;
use crate::audit::cosignature::Cosigner;
use crate::audit::witness::{Refusal, Witness};
use crate::cli::CliError;

#[derive(Debug, clap::Args)]
pub struct WitnessArgs {
    #[command(subcommand)]
    pub keygen: Option<WitnessCommand>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    pub listen: String,
    /// File holding the witness's private key (`PRIVATE+KEY+…`, from `custos witness keygen`);
    /// or set CUSTOS_WITNESS_KEY.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// The state file (latest cosigned size and root per log), replaced atomically.
    #[arg(long, default_value = "witness-state.json")]
    pub state: PathBuf,
    /// A log to witness: its checkpoint verifier key (`<origin>+<keyid>+<key>`, from
    /// `GET /v1/ledgers/{ledger}/keys`); the key name is the log's origin. Repeatable.
    #[arg(long = "log")]
    pub logs: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum WitnessCommand {
    /// Print a new witness key pair: the private key, then the vkey.
    Keygen {
        /// The witness's name (a schema-less URL that identifies it).
        #[arg(long)]
        name: String,
    },
}

pub async fn run(args: WitnessArgs) -> Result<(), CliError> {
    if let Some(WitnessCommand::Keygen { name }) = args.keygen {
        let c = Cosigner::generate(&name).map_err(|e| CliError::Usage(e.to_string()))?;
        println!("{}", c.encode());
        println!("{}", c.verifier().encode());
        return Ok(());
    }
    // The private key text is wiped from memory once parsed.
    let key = zeroize::Zeroizing::new(match (&args.key_file, std::env::var("CUSTOS_WITNESS_KEY").ok()) {
        (Some(f), _) => {
            std::fs::read_to_string(f).map_err(|e| CliError::Usage(format!("--key-file {}: {e}", f.display())))?
        }
        (None, Some(k)) => k,
        (None, None) => return Err(CliError::Usage("--key-file or CUSTOS_WITNESS_KEY is required".into())),
    });
    let cosigner = Cosigner::parse(&key).map_err(|e| CliError::Usage(format!("witness key: {e}")))?;
    let logs = parse_logs(&args.logs)?;
    let witness =
        Witness::open(cosigner, logs, args.state.clone()).map_err(|e| CliError::Usage(format!("--state: {e}")))?;
    let listener =
        TcpListener::bind(&args.listen).map_err(|e| CliError::Usage(format!("--listen {}: {e}", args.listen)))?;
    tracing::info!(listen = %args.listen, witness = %witness.cosigner().verifier().encode(), "witness listening");
    server(listener, Arc::new(witness)).map_err(anyhow::Error::from)?.await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// `--log` keys grouped by origin (= key name).
pub fn parse_logs(args: &[String]) -> Result<HashMap<String, Vec<NoteVerifier>>, CliError> {
    if args.is_empty() {
        return Err(CliError::Usage("at least one --log key is required".into()));
    }
    let mut logs: HashMap<String, Vec<NoteVerifier>> = HashMap::new();
    for a in args {
        let k = NoteVerifier::parse(a.trim()).map_err(|e| CliError::Usage(format!("--log {a}: {e}")))?;
        logs.entry(k.name().to_owned()).or_default().push(k);
    }
    Ok(logs)
}

/// The witness's HTTP server on `listener` (tests bind port 0).
pub fn server(listener: TcpListener, witness: Arc<Witness>) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(witness);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/add-checkpoint", web::post().to(add_checkpoint))
            .route("/{origin_hash}/checkpoint", web::get().to(latest))
    })
    .workers(2)
    .listen(listener)?
    .run())
}

async fn add_checkpoint(witness: web::Data<Witness>, body: web::Bytes) -> HttpResponse {
    let now = chrono::Utc::now().timestamp().max(1) as u64;
    // Signing and the fsync of the state file are blocking work.
    let w = witness.into_inner();
    let res = match tokio::task::spawn_blocking(move || w.add_checkpoint(&body, now)).await {
        Ok(r) => r,
        Err(_) => Err(Refusal::Storage),
    };
    match res {
        Ok(lines) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(lines),
        Err(Refusal::Conflict(size)) => {
            HttpResponse::Conflict().content_type("text/x.tlog.size").body(format!("{size}\n"))
        }
        Err(r) => {
            let status = actix_web::http::StatusCode::from_u16(r.status())
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{r}\n"))
        }
    }
}

async fn latest(witness: web::Data<Witness>, path: web::Path<String>) -> HttpResponse {
    match witness.latest(&path.into_inner()) {
        Some(note) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(note),
        None => HttpResponse::NotFound().finish(),
    }
}
