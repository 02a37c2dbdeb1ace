//! Identity. Pure building blocks (no database, no HTTP): password policy and hashing, TOTP
//! and recovery codes, opaque tokens and JWT access tokens. On top of them, the services the
//! routes call: sessions and refresh rotation, login with lockout and the MFA step, MFA
//! enrolment, account and admin user management, patient invites; and the `AuthUser`
//! extractor every protected route uses.
//! Password hashing/verification is blocking CPU work: go through `hashing`.

pub mod account;
pub mod extractor;
pub mod hashing;
pub mod invites;
pub mod lockout;
pub mod login;
pub mod mfa;
pub mod password;
pub mod rate_limit;
pub mod sessions;
pub mod tokens;
pub mod totp;
pub mod users;

pub use extractor::{AnySessionUser, AuthUser, Caller, CookieSession, EnrollingUser, Identity, RequestMeta};

#[cfg(test)]
mod password_tests;
#[cfg(test)]
mod tokens_tests;
#[cfg(test)]
mod totp_tests;
