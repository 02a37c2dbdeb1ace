//! Admin pages: users, care teams, break-glass grants, ledger and key health.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
