//! Reaching PostgreSQL: the libpq URL read into a connection config with TCP keepalives, TLS
//! through rustls, the URL as errors show it (without its password), and the schema as numbered
//! steps applied under an advisory lock so replicas starting together apply each step once.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long a connection attempt may take before the store says it cannot reach the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keepalive probes start after this much silence, so a replica whose host vanished (no FIN, no
/// RST) loses its session, and with it its advisory lock, well within the 30 s the sweep allows.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;

/// The advisory lock key taken while the schema is migrated.
const MIGRATE_LOCK: i64 = 0x5343_4d43_5000_0001;

/// rustls for TCP hosts. tokio-postgres asks for a TLS connector even for a unix socket (no
/// name, and no TLS: PostgreSQL has none there, and `parse` turns it off), so the empty name is
/// given a placeholder rather than failing as an invalid DNS name.
#[derive(Clone)]
pub(crate) struct Tls(MakeRustlsConnect);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for Tls
where
    MakeRustlsConnect: tokio_postgres::tls::MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        let host = if host.is_empty() { "localhost" } else { host };
        self.0.make_tls_connect(host)
    }
}

/// A parsed `postgres://` URL, ready to connect.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: Tls,
    /// The URL without its password, for errors and logs.
    pub(crate) shown: String,
}

/// The URL with any password taken out (in the user part or as a `password=` parameter).
pub fn without_password(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Not a URL we can take apart: show only its scheme, never the rest.
        return match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "(not a URL)".into(),
        };
    };
    if u.password().is_some() {
        let _ = u.set_password(None);
    }
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

impl Target {
    /// Reads `url`. `sslmode=verify-full` and `verify-ca` are accepted as `require`: rustls always
    /// verifies the server's certificate (against the Mozilla roots, or `sslrootcert=PATH`), so
    /// every TLS mode here is at least libpq's `verify-full`.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let shown = without_password(url);
        let mut u = url::Url::parse(url).map_err(|e| format!("not a postgres:// URL: {e}"))?;
        let mut root_file = None;
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .filter_map(|(k, v)| match (&*k, &*v) {
                ("sslrootcert", path) => {
                    root_file = Some(path.to_string());
                    None
                }
                ("sslmode", "verify-full" | "verify-ca") => {
                    Some(("sslmode".into(), "require".into()))
                }
                _ => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        if pairs.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let mut config: tokio_postgres::Config = u
            .as_str()
            .parse()
            .map_err(|e| format!("not a libpq URL: {e}"))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        // TLS names a server by its DNS name; a unix socket has none, and needs no TLS.
        let all_unix = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        if all_unix && config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Disable);
        }
        if config.get_application_name().is_none() {
            config.application_name("smartcar-mcp");
        }
        let mut roots = rustls::RootCertStore::empty();
        match &root_file {
            Some(path) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                for c in certs {
                    let c = c.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Target {
            config,
            tls: Tls(MakeRustlsConnect::new(tls)),
            shown,
        })
    }

    /// One connection outside the pool, driven by its own task until it closes; the task's
    /// handle ends when the connection does. Notifications go to `notices` when given.
    pub(crate) async fn connect(
        &self,
        notices: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
        use futures::StreamExt;
        let (client, mut conn) = self.config.connect(self.tls.clone()).await?;
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                        if let Some(n) = &notices {
                            let _ = n.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("store: a PostgreSQL connection ended: {e}");
                        break;
                    }
                }
            }
        });
        Ok((client, driver))
    }
}

/// Step `i` takes the database from version `i` to `i + 1`. Append only: a shipped step never
/// changes. The columns mirror SQLite's (`store::migrate`), times as the same RFC 3339 text, so
/// `audit` prints both alike; `replica` says which process wrote a row.
const STEPS: &[&str] = &[
    // 1: the audit log, usage, the daily allowance, pushed state's shared log, webhook event ids,
    // redeemed confirmations and handshake sessions.
    "CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        at TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        vehicle_id TEXT,
        user_id TEXT,
        caller TEXT NOT NULL,
        confirmation TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        http_status INTEGER,
        request_id TEXT,
        error TEXT,
        finished_at TEXT,
        replica TEXT NOT NULL
    );
    CREATE INDEX audit_vehicle ON audit (vehicle_id, at);
    CREATE INDEX audit_open ON audit (replica) WHERE state = 'sent' AND finished_at IS NULL;
    CREATE TABLE usage (
        day TEXT NOT NULL,
        vehicle_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        upstream_calls BIGINT NOT NULL DEFAULT 0,
        coalesced BIGINT NOT NULL DEFAULT 0,
        cached BIGINT NOT NULL DEFAULT 0,
        pushed BIGINT NOT NULL DEFAULT 0,
        rate_limited BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (day, vehicle_id, tool)
    );
    CREATE TABLE daily_calls (
        day TEXT NOT NULL,
        vehicle TEXT NOT NULL,
        calls BIGINT NOT NULL,
        PRIMARY KEY (day, vehicle)
    );
    CREATE TABLE pushed_event (
        seq BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        replica TEXT NOT NULL,
        vehicle TEXT,
        event TEXT
    );
    CREATE INDEX pushed_event_at ON pushed_event (at);
    CREATE TABLE webhook_event (
        event_id TEXT PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE redeemed (
        key TEXT PRIMARY KEY,
        until TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE mcp_session (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        touched TIMESTAMPTZ NOT NULL DEFAULT now()
    );",
    // 2: the OAuth caller (subject and issuer) of each audited call; null for the operator's own.
    "ALTER TABLE audit ADD COLUMN principal TEXT;
    ALTER TABLE audit ADD COLUMN principal_issuer TEXT;
    CREATE INDEX audit_principal ON audit (principal, at);",
];

/// Brings the database to the latest version under a transaction-scoped advisory lock; a database
/// from a newer release is refused rather than written with a schema this one does not know.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), String> {
    let err = |e: tokio_postgres::Error| e.to_string();
    let tx = client.transaction().await.map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS smartcar_mcp_schema (version INTEGER NOT NULL)")
        .await
        .map_err(err)?;
    let at: i32 = tx
        .query_opt("SELECT version FROM smartcar_mcp_schema", &[])
        .await
        .map_err(err)?
        .map_or(0, |r| r.get(0));
    let latest = STEPS.len() as i32;
    if at > latest {
        return Err(format!(
            "schema version {at} is newer than this smartcar-mcp knows ({latest}); use a newer release"
        ));
    }
    for step in STEPS.iter().skip(at.max(0) as usize) {
        tx.batch_execute(step).await.map_err(err)?;
    }
    if at == 0 {
        tx.execute(
            "INSERT INTO smartcar_mcp_schema (version) VALUES ($1)",
            &[&latest],
        )
        .await
        .map_err(err)?;
    } else if at < latest {
        tx.execute("UPDATE smartcar_mcp_schema SET version = $1", &[&latest])
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

/// The advisory lock key of a replica id: the same for every process that computes it.
pub(crate) const REPLICA_KEY: &str = "hashtextextended('smartcar-mcp replica ' || $1, 0)";

/// For tests: a new, empty database on the server `url` names, and the URL that reaches it.
#[doc(hidden)]
pub async fn scratch_database(url: &str) -> Result<String, String> {
    let target = Target::parse(url)?;
    let (client, driver) = target.connect(None).await.map_err(|e| e.to_string())?;
    let name = format!("smartcar_mcp_test_{:016x}", fastrand::u64(..));
    let made = client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| e.to_string());
    driver.abort();
    made?;
    let mut u = url::Url::parse(url).map_err(|e| e.to_string())?;
    u.set_path(&format!("/{name}"));
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows() {
        let shown =
            without_password("postgres://app:hunter2@db.example:5432/fleet?sslmode=require");
        assert_eq!(
            shown,
            "postgres://app@db.example:5432/fleet?sslmode=require"
        );
        let shown = without_password("postgres://app@db/fleet?password=hunter2&sslmode=require");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert!(!without_password("not a url hunter2").contains("hunter2"));
    }

    #[test]
    fn a_socket_directory_is_reached_without_tls_and_verify_full_means_require() {
        let t = Target::parse("postgres://app@%2Ftmp%2Fpg/postgres").unwrap();
        assert!(matches!(
            t.config.get_hosts(),
            [tokio_postgres::config::Host::Unix(p)] if p == std::path::Path::new("/tmp/pg")
        ));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
        let t = Target::parse("postgres://app@db.example/fleet?sslmode=verify-full").unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert!(t.config.get_keepalives());
    }
}
