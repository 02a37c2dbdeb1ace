//! Offline verification speed on a synthetic bundle (realistic event sizes, a checkpoint every
//! 65,536 events). Baseline: an RFC 9162 root over the same number of 256-byte entries.

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custos::audit::merkle::{self, TreeState};
use custos::audit::offline::verify_bundle;
use custos::audit::signing::LedgerSigner;
use custos::audit::store::EventFields;
use custos::keys::RootKeys;
use uuid::Uuid;

pub fn run(n: u64) {
    let signer = LedgerSigner::new("bench.custos/ledger", &RootKeys::random()).unwrap();
    let ledger = Uuid::new_v4();
    let path = std::env::temp_dir().join(format!("custos-bench-{ledger}.bundle"));
    let t = Instant::now();
    {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        writeln!(w, "custos-ledger-bundle 1\nledger {ledger}\norigin {}", signer.origin_for(ledger)).unwrap();
        writeln!(w, "key {}", signer.verifier().encode()).unwrap();
        let mut tree = TreeState::new();
        let mut buf = Vec::with_capacity(1024);
        let base = chrono::DateTime::from_timestamp_micros(1_763_700_000_000_000).unwrap();
        for i in 0..n {
            let ev = EventFields {
                format_version: 2,
                event_id: Uuid::now_v7(),
                occurred_at: base + chrono::Duration::microseconds(i as i64 * 1377),
                org_id: Some(ledger),
                actor_id: Some(Uuid::new_v4()),
                actor_role: Some("clinician".into()),
                action: "read".into(),
                resource_type: "prescription".into(),
                resource_ids: vec![Uuid::new_v4().to_string()],
                patient_id: Some(Uuid::new_v4()),
                outcome: "success".into(),
                reason: None,
                request_id: Some(Uuid::new_v4()),
                correlation_id: None,
                patient_ids: vec![],
                client_ip: Some("10.20.30.40".into()),
                user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) CustosPortal/2.3".into()),
                break_glass: false,
                imported: false,
            };
            buf.clear();
            buf.extend_from_slice(b"event ");
            ev.canonical(ledger, i).write_canonical(&mut buf).unwrap();
            tree.append(merkle::leaf_hash(&buf[6..])).unwrap();
            buf.push(b'\n');
            w.write_all(&buf).unwrap();
            if (i + 1) % 65_536 == 0 || i + 1 == n {
                let note = signer.sign(ledger, tree.size(), tree.root()).unwrap();
                writeln!(w, "checkpoint {}", B64.encode(note)).unwrap();
            }
        }
        writeln!(w, "end {n}").unwrap();
        w.flush().unwrap();
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("verify: {n} events, bundle {:.0} MB (written in {:.1} s)", bytes as f64 / 1e6, t.elapsed().as_secs_f64());

    // Baseline: the SHA-256 bound of the job.
    let entry = [0x5au8; 256];
    let t = Instant::now();
    let mut tree = TreeState::new();
    for i in 0..n {
        let mut e = entry;
        e[..8].copy_from_slice(&i.to_be_bytes());
        tree.append(merkle::leaf_hash(&e)).unwrap();
    }
    std::hint::black_box(tree.root());
    let base = t.elapsed().as_secs_f64();
    println!("  baseline  RFC 9162 root over {n} x 256-byte entries: {base:.3} s ({:.0} entries/s)", n as f64 / base);

    let keys = [signer.verifier()];
    for round in 1..=2 {
        let t = Instant::now();
        let file = std::fs::File::open(&path).unwrap();
        let report = verify_bundle(BufReader::with_capacity(1 << 20, file), Some(&keys), &[], |_| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(report.finding.is_none(), "{:?}", report.finding);
        println!(
            "  offline verify (run {round}): {secs:.3} s = {:.0} entries/s, {:.0} MB/s, {} checkpoints",
            n as f64 / secs,
            bytes as f64 / 1e6 / secs,
            report.checkpoints
        );
    }
    std::fs::remove_file(&path).ok();
}
