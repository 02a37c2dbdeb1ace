//! The clinical API over HTTP: access matrix, rules, encryption at rest, audit completeness.

mod flow;
mod matrix;
mod world;
