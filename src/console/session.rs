//! The console's browser session: an HttpOnly cookie naming a server-side session (the same
//! `sessions` row the API's access tokens name), and the CSRF tokens bound to it.
//!
//! Cookie value: `v1.<session id>.<user id>.<org id>.<role>.<mac>`, the MAC an HMAC-SHA256
//! under [`AppState::console_key`] (a KEK sub-key) over everything before it. The MAC only
//! says "this server wrote it"; whether the session is live (not revoked, not idle, not past
//! its absolute lifetime, account active) is checked in PostgreSQL on every request by the
//! same extractor the API uses. No token ever reaches JavaScript or web storage.
//!
//! CSRF: a synchronizer token, HMAC(key, "csrf" ‖ session id), in every form (`csrf`) and in
//! the `X-CSRF-Token` header of `fetch` calls; before sign-in, HMAC(key, "pre" ‖ a random
//! pre-session cookie). Compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;
use uuid::Uuid;

use crate::auth::CookieSession;
use crate::auth::tokens::ct_eq;
use crate::db::ClaimRole;

/// The session cookie (Path=/console, HttpOnly, SameSite=Strict, Secure under TLS).
pub const SESSION_COOKIE: &str = "custos_console";
/// The pre-session cookie the sign-in form's CSRF token is bound to.
pub const PRE_COOKIE: &str = "custos_console_pre";
/// The short-lived cookie carrying the MFA challenge between the password and code steps.
pub const MFA_COOKIE: &str = "custos_console_mfa";
/// The header `fetch` calls carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field forms carry it in.
pub const CSRF_FIELD: &str = "csrf";

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC pads a short key with zeros to the block size: this is HMAC under `key`.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut m = <Hmac<Sha256> as KeyInit>::new(&block.into());
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The cookie value for `s`.
pub fn encode(key: &[u8; 32], s: &CookieSession) -> String {
    let body = format!("v1.{}.{}.{}.{}", s.session_id, s.user_id, s.org_id, s.role.as_str());
    let tag = mac(key, &[b"session", body.as_bytes()]);
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The session a cookie value names, if this server wrote it (MAC checked in constant time).
pub fn decode(key: &[u8; 32], value: &str) -> Option<CookieSession> {
    let (body, tag) = value.rsplit_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !ct_eq(&tag, &mac(key, &[b"session", body.as_bytes()])) {
        return None;
    }
    let mut it = body.split('.');
    if it.next()? != "v1" {
        return None;
    }
    let session_id = Uuid::parse_str(it.next()?).ok()?;
    let user_id = Uuid::parse_str(it.next()?).ok()?;
    let org_id = Uuid::parse_str(it.next()?).ok()?;
    let role = ClaimRole::from_user_role(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some(CookieSession { user_id, org_id, session_id, role })
}

/// What a form or `fetch` call must present: bound to the session, or before sign-in to the
/// pre-session cookie.
#[derive(Clone)]
pub enum CsrfBinding {
    Session(Uuid),
    Pre(String),
}

/// The CSRF token for `binding`.
pub fn csrf_token(key: &[u8; 32], binding: &CsrfBinding) -> String {
    let tag = match binding {
        CsrfBinding::Session(id) => mac(key, &[b"csrf", id.as_bytes()]),
        CsrfBinding::Pre(v) => mac(key, &[b"pre", v.as_bytes()]),
    };
    URL_SAFE_NO_PAD.encode(tag)
}

/// Whether `presented` is the CSRF token for `binding` (constant time).
pub fn csrf_ok(key: &[u8; 32], binding: &CsrfBinding, presented: &str) -> bool {
    ct_eq(presented.as_bytes(), csrf_token(key, binding).as_bytes())
}

/// A fresh random pre-session value.
pub fn new_pre_value() -> String {
    let mut raw = [0u8; 24];
    rand::rng().fill(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CookieSession {
        CookieSession {
            user_id: Uuid::now_v7(),
            org_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            role: ClaimRole::Auditor,
        }
    }

    #[test]
    fn cookie_round_trips_and_rejects_any_change() {
        let key = [7u8; 32];
        let s = sample();
        let v = encode(&key, &s);
        assert_eq!(decode(&key, &v), Some(s));
        assert_eq!(decode(&[8u8; 32], &v), None, "another key");
        let forged = v.replace("auditor", "admin");
        assert_eq!(decode(&key, &forged), None, "role changed");
        let mut chars: Vec<char> = v.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        assert_eq!(decode(&key, &chars.into_iter().collect::<String>()), None, "MAC changed");
        assert_eq!(decode(&key, ""), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let key = [7u8; 32];
        let a = CsrfBinding::Session(Uuid::now_v7());
        let b = CsrfBinding::Session(Uuid::now_v7());
        let t = csrf_token(&key, &a);
        assert!(csrf_ok(&key, &a, &t));
        assert!(!csrf_ok(&key, &b, &t));
        assert!(!csrf_ok(&key, &a, ""));
        let pre = CsrfBinding::Pre(new_pre_value());
        assert!(!csrf_ok(&key, &pre, &t));
        assert!(csrf_ok(&key, &pre, &csrf_token(&key, &pre)));
    }
}
