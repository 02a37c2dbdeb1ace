//! Identity. Pure building blocks (no database, no HTTP): password policy and hashing, TOTP
//! and recovery codes, opaque tokens and JWT access tokens. On top of them, the services the
//! routes call: sessions and refresh rotation, login with lockout and the MFA step, MFA
//! enrolment, account and admin user management, patient invites; and the caller types
//! (`caller`) they take, which the HTTP layer's extractors build (`crate::middleware::caller`).
//! Password hashing/verification is blocking CPU work: go through `hashing`.

pub mod account;
pub mod caller;
pub mod error;
pub mod hashing;
pub mod invites;
pub mod lockout;
pub mod login;
pub mod mfa;
pub mod outbox;
pub mod outbox_sender;
pub mod passkey_login;
pub mod passkeys;
pub mod password;
pub mod session_check;
pub mod sessions;
pub mod tokens;
pub mod totp;
pub mod users;

pub use caller::{AnySessionUser, AuthUser, EnrollingUser, Identity, RequestMeta};
pub use error::AuthError;

#[cfg(test)]
mod password_tests;
#[cfg(test)]
mod tokens_tests;
#[cfg(test)]
mod totp_tests;
