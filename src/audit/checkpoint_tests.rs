//! Tests for `checkpoint`, including the published x/mod/sumdb/note vectors
//! (golang/mod sumdb/note/note_test.go).

use super::super::merkle::{empty_root, leaf_hash, root_of};
use super::*;

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> NoteVerifier {
    NoteVerifier::parse(PETER_VKEY).unwrap()
}

fn enoch() -> NoteVerifier {
    NoteVerifier::parse(ENOCH_VKEY).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    let leaves: Vec<_> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    Checkpoint::new("custos.example/ledger/org-1", size, root_of(&leaves)).unwrap()
}

#[test]
fn go_key_strings_parse_and_round_trip() {
    let v = peter();
    assert_eq!((v.name(), v.key_id()), ("PeterNeumann", 0xc74f20a3));
    assert_eq!(v.encode(), PETER_VKEY);
    let s = NoteSigner::parse(PETER_SKEY).unwrap();
    assert_eq!(s.encode(), PETER_SKEY);
    assert_eq!(s.verifier(), v);
    assert_eq!(enoch().key_id(), 0xaf0cfe78);
    assert!(!format!("{s:?}").contains("AYEK"));
}

#[test]
fn go_key_string_manglings_are_rejected() {
    // As in TestNewVerifier/TestNewSigner: every proper substring and every
    // single-byte increment must fail.
    for key in [PETER_VKEY, PETER_SKEY] {
        let parse = |k: &str| {
            if key == PETER_VKEY { NoteVerifier::parse(k).is_ok() } else { NoteSigner::parse(k).is_ok() }
        };
        let b = key.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    assert!(!parse(&key[i..j]), "accepted {:?}", &key[i..j]);
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            assert!(!parse(std::str::from_utf8(&m).unwrap()));
        }
    }
    // Wrong key length and unknown algorithm, each with a recomputed id (Go's cases).
    let wrong_len = "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==";
    assert!(NoteVerifier::parse(wrong_len).is_err());
    let alg = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(matches!(NoteVerifier::parse(alg), Err(CheckpointError::UnsupportedAlgorithm(_))));
}

#[test]
fn go_sign_vector() {
    // Ed25519 is deterministic, so this is byte-exact with x/mod/sumdb/note.
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    let note = SignedNote::sign(TEXT, &[signer]).unwrap().encode();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_open_vectors() {
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = SignedNote::parse(msg.as_bytes()).unwrap();
    assert_eq!(note.text, TEXT);
    assert_eq!(note.encode(), msg);
    // One known, one unknown signer: verifies, Enoch ignored.
    let known = [peter()];
    let signed = note.verify(&known).unwrap();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].name(), "PeterNeumann");
    // Both known.
    assert_eq!(note.verify(&[peter(), enoch()]).unwrap().len(), 2);
    // Nobody known.
    assert_eq!(note.verify(&[]), Err(CheckpointError::NoKnownSignature));
    // Duplicate verifier entries for a key that signed.
    assert!(matches!(note.verify(&[enoch(), peter(), enoch()]), Err(CheckpointError::AmbiguousKey { .. })));
    // Corrupted signature from a known key rejects the note.
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let bad = SignedNote::parse(bad.as_bytes()).unwrap();
    assert!(matches!(bad.verify(&[peter()]), Err(CheckpointError::InvalidSignature { .. })));
}

#[test]
fn go_malformed_notes() {
    let bad_msgs = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)),
    ];
    for msg in &bad_msgs {
        assert!(
            matches!(SignedNote::parse(msg.as_bytes()), Err(CheckpointError::MalformedNote(_))),
            "accepted {msg:?}"
        );
    }
    let mut invalid_utf8 = b"\xff".to_vec();
    invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
    assert!(SignedNote::parse(&invalid_utf8).is_err());
}

#[test]
fn checkpoint_round_trip() {
    let signer = NoteSigner::generate("custos.example/ledger/org-1").unwrap();
    let cp = checkpoint(13);
    let note = sign_checkpoint(&cp, std::slice::from_ref(&signer)).unwrap();
    assert!(note.starts_with(&cp.to_body()));
    assert!(note.contains("\n\n\u{2014} custos.example/ledger/org-1 "));
    assert_eq!(open_checkpoint(note.as_bytes(), &[signer.verifier()]).unwrap(), cp);
    // The published key string round-trips into a working verifier.
    let published = NoteVerifier::parse(&signer.verifier().encode()).unwrap();
    assert_eq!(open_checkpoint(note.as_bytes(), &[published]).unwrap(), cp);
    let reloaded = NoteSigner::parse(&signer.encode()).unwrap();
    assert_eq!(sign_checkpoint(&cp, &[reloaded]).unwrap(), note);
}

#[test]
fn tampered_body_fails() {
    let signer = NoteSigner::generate("custos.example/log").unwrap();
    let known = [signer.verifier()];
    let note = sign_checkpoint(&checkpoint(13), &[signer]).unwrap();
    let tampered = note.replacen("\n13\n", "\n12\n", 1);
    assert!(matches!(open_checkpoint(tampered.as_bytes(), &known), Err(CheckpointError::InvalidSignature { .. })));
}

#[test]
fn unknown_keys_only_fails() {
    let signer = NoteSigner::generate("custos.example/log").unwrap();
    let note = sign_checkpoint(&checkpoint(3), &[signer]).unwrap();
    // Same name, different key: a different key id, so simply unknown.
    let other = NoteSigner::generate("custos.example/log").unwrap();
    assert_eq!(open_checkpoint(note.as_bytes(), &[other.verifier()]), Err(CheckpointError::NoKnownSignature));
}

#[test]
fn rotation_with_several_signers() {
    let old = NoteSigner::generate("custos.example/log").unwrap();
    let new = NoteSigner::generate("custos.example/log").unwrap();
    let witness = NoteSigner::generate("witness.example").unwrap();
    let cp = checkpoint(1000);
    let note = sign_checkpoint(&cp, &[old.clone(), new.clone(), witness]).unwrap();
    assert_eq!(note.matches('\u{2014}').count(), 3);
    for known in [vec![old.verifier()], vec![new.verifier()], vec![old.verifier(), new.verifier()]] {
        assert_eq!(open_checkpoint(note.as_bytes(), &known).unwrap(), cp);
    }
    assert_eq!(sign_checkpoint(&cp, &[]), Err(CheckpointError::NoSigners));
}

#[test]
fn body_parsing_is_strict() {
    let cp = checkpoint(5);
    assert_eq!(Checkpoint::from_body(&cp.to_body()).unwrap(), cp);
    let root = B64.encode(cp.root);
    let empty = Checkpoint::new("o", 0, empty_root()).unwrap();
    assert_eq!(Checkpoint::from_body(&empty.to_body()).unwrap(), empty);
    for bad in [
        format!("o\n5\n{root}"),
        format!("o\n05\n{root}\n"),
        format!("o\n+5\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n5\n{root}\next\n"),
        format!("\n5\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        "o\n5\nAAAA\n".to_owned(),
        format!("o\n5\n{}\n", &root[..root.len() - 1]),
    ] {
        assert!(Checkpoint::from_body(&bad).is_err(), "accepted {bad:?}");
    }
    assert!(Checkpoint::new("a\nb", 1, cp.root).is_err());
    assert!(NoteSigner::generate("has space").is_err());
    assert!(NoteSigner::generate("has+plus").is_err());
}
