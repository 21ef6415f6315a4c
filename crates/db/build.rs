// `sqlx::migrate!` embeds the migrations when this crate compiles; without this a new file in
// `migrations/` would not rebuild it (sqlx's recommended build script).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
