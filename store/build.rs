//! `sqlx::migrate!` embeds `migrations/` when this crate is compiled, and cargo does
//! not watch that folder on its own: without this, adding a migration left stale
//! builds of the store (another profile or feature set) without it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
