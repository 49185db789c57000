//! The PostgreSQL server the store's tests share (`SMARTCAR_MCP_TEST_POSTGRES`, started by
//! `.ci/run` through `.ci/postgres`), and a fresh, empty database on it per store under test.

use smartcar_mcp::store::Store;

pub const ENV: &str = "SMARTCAR_MCP_TEST_POSTGRES";

/// The server's URL. Missing under CI (`CI` set), the test fails: a green run must have tested
/// PostgreSQL. Missing elsewhere, the test is skipped with a line saying so.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(ENV).ok().filter(|u| !u.trim().is_empty()) {
        Some(u) => Some(u),
        None if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
            panic!("{test}: {ENV} is not set under CI; .ci/run starts a PostgreSQL and sets it")
        }
        None => {
            eprintln!("{test}: skipped, {ENV} is not set (`.ci/postgres start DIR` prints one)");
            None
        }
    }
}

/// A URL to a new, empty database on the server at `url`.
pub async fn fresh_database(url: &str) -> String {
    Store::scratch_postgres(url)
        .await
        .expect("the test PostgreSQL makes a database")
}

/// A ready store on the database at `db`, as replica `replica`.
pub async fn replica(db: &str, replica: &str) -> Store {
    let s = Store::postgres(db, replica, false).expect("a postgres URL");
    s.ready().await.expect("the test PostgreSQL is reachable");
    s
}
