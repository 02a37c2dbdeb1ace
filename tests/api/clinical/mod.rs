//! The clinical API over HTTP: access matrix, rules, encryption at rest, audit completeness.

mod audit;
mod encryption;
mod flow;
mod keys;
mod matrix;
mod openapi;
mod world;
