//! Rebuilds when migrations/ change (`sqlx::migrate!` embeds them at compile time). Policy
//! files are embedded by `include_str!` in src/db/migrate.rs, which rustc tracks itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
