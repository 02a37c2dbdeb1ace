//! Authentication building blocks that need neither the database nor HTTP: password
//! policy and hashing, TOTP and recovery codes, opaque tokens and JWT access tokens.
//! Password hashing/verification is blocking CPU work: run it in `spawn_blocking`.

pub mod password;
pub mod tokens;
pub mod totp;

#[cfg(test)]
mod password_tests;
#[cfg(test)]
mod tokens_tests;
#[cfg(test)]
mod totp_tests;
