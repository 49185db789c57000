//! The operator's table of callers to Smartcar users (`--tenants PATH`), for authorization
//! servers that cannot put the user id in the token: a JSON array of
//! `{"issuer", "subject", "user_ids": [...]}`, read at start and again on SIGHUP. A file that
//! no longer reads keeps the last good table, so a typo never locks every driver out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    issuer: String,
    subject: String,
    user_ids: Vec<String>,
}

/// Callers (issuer + subject) to their Smartcar user ids.
pub struct Tenants {
    path: PathBuf,
    table: RwLock<HashMap<(String, String), Vec<String>>>,
}

impl Tenants {
    /// Reads the file; an unreadable one at start is an error, not an empty table.
    pub fn open(path: &Path) -> anyhow::Result<Tenants> {
        let table = read(path)?;
        Ok(Tenants {
            path: path.to_path_buf(),
            table: RwLock::new(table),
        })
    }

    /// Reads the file again (SIGHUP); on failure the table in use stays and the reason is logged.
    pub fn reload(&self) {
        match read(&self.path) {
            Ok(t) => {
                let n = t.len();
                *self.table.write().unwrap_or_else(|p| p.into_inner()) = t;
                tracing::info!(callers = n, "tenants table reloaded");
            }
            Err(e) => tracing::warn!("tenants table not reloaded, the previous one stays: {e}"),
        }
    }

    /// The user ids the table gives this caller.
    pub fn users(&self, issuer: &str, subject: &str) -> Vec<String> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table
            .get(&(issuer.to_string(), subject.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

fn read(path: &Path) -> anyhow::Result<HashMap<(String, String), Vec<String>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--tenants {}: {e}", path.display()))?;
    let rows: Vec<Row> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--tenants {}: expected a JSON array of {{\"issuer\", \"subject\", \"user_ids\": [..]}}: {e}",
            path.display()
        )
    })?;
    let mut table: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in rows {
        let ids = table.entry((r.issuer, r.subject)).or_default();
        ids.extend(r.user_ids.into_iter().filter(|u| !u.trim().is_empty()));
        ids.sort();
        ids.dedup();
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_maps_callers_and_a_broken_reload_keeps_the_last_good_one() {
        let dir = std::env::temp_dir().join(format!("tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.json");
        std::fs::write(
            &f,
            r#"[{"issuer":"https://as","subject":"a","user_ids":["u2","u1"]},
                {"issuer":"https://as","subject":"a","user_ids":["u1"]}]"#,
        )
        .unwrap();
        let t = Tenants::open(&f).unwrap();
        assert_eq!(t.users("https://as", "a"), ["u1", "u2"]);
        assert!(t.users("https://other", "a").is_empty());
        std::fs::write(&f, "not json").unwrap();
        t.reload();
        assert_eq!(t.users("https://as", "a"), ["u1", "u2"]);
        std::fs::write(
            &f,
            r#"[{"issuer":"https://as","subject":"a","user_ids":["u3"]}]"#,
        )
        .unwrap();
        t.reload();
        assert_eq!(t.users("https://as", "a"), ["u3"]);
        assert!(Tenants::open(&dir.join("missing.json")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
