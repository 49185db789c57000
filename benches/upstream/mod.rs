//! The canned upstream of the end-to-end bench: a bare HTTP/1.1 server on 127.0.0.1 answering
//! fixed JSON for the token, one signal and the lock and unlock commands, so the upstream's own cost stays far
//! below the server's and the numbers measure the server, not a framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "bench-token";

const TOKEN_BODY: &str =
    r#"{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}"#;

/// The documented single-signal answer (https://smartcar.com/docs/api-reference/get-signal, bare resource form).
pub const SIGNAL_BODY: &str = concat!(
    r#"{"id":"tractionbattery-stateofcharge","type":"signal","attributes":{"code":"tractionbattery-stateofcharge","#,
    r#""name":"StateOfCharge","group":"TractionBattery","status":{"value":"SUCCESS"},"body":{"unit":"percent","value":75}},"#,
    r#""meta":{"retrievedAt":1752104218549,"oemUpdatedAt":1752104118549},"#,
    r#""links":{"self":"/vehicles/36ab27d0-fd9d-4455-823a-ce30af709ffc/signals/tractionbattery-stateofcharge"}}"#
);

/// The documented command answer (https://smartcar.com/docs/api-reference/charging/set-charge-limit).
const LOCK_BODY: &str = concat!(
    r#"{"data":{"id":"exec_9876543210","type":"command-execution","attributes":{"commandType":"security-lock","#,
    r#""status":{"value":"SUCCESS"},"executionMode":"sync"},"#,
    r#""meta":{"executedAt":"2024-01-01T12:00:00Z","completedAt":"2024-01-01T12:00:02Z","durationInSeconds":2}}}"#
);

const NOT_FOUND_BODY: &str = r#"{"errors":[{"status":"404","type":"RESOURCE_NOT_FOUND","code":"PATH_NOT_FOUND","title":"Not found","detail":"The canned upstream answers only the token, one signal and lock."}]}"#;

/// Requests answered, by kind: proof that every measured call really reached the upstream.
#[derive(Default)]
pub struct Counts {
    pub token: AtomicU64,
    pub signal: AtomicU64,
    pub command: AtomicU64,
    pub other: AtomicU64,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

impl Upstream {
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn api_url(&self) -> String {
        format!("http://{}/v3", self.addr)
    }
    pub fn management_url(&self) -> String {
        format!("http://{}/management/v3", self.addr)
    }
}

/// Binds 127.0.0.1:0 and serves on the current runtime until the process ends.
pub async fn start() -> std::io::Result<Upstream> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, c.clone()));
        }
    });
    Ok(Upstream { addr, counts })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the first complete request in `buf` and its response, or `None` if more bytes are
/// needed.
fn next_request(buf: &[u8], counts: &Counts) -> Option<(usize, Vec<u8>)> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).unwrap_or("");
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("");
    let path = first.next().unwrap_or("");
    let body_len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let total = head_end + body_len;
    if buf.len() < total {
        return None;
    }
    let (status, body) = match (method, path) {
        ("POST", "/oauth2/token") => {
            counts.token.fetch_add(1, Ordering::Relaxed);
            ("200 OK", TOKEN_BODY)
        }
        ("GET", p) if p.starts_with("/v3/vehicles/") && p.contains("/signals/") => {
            counts.signal.fetch_add(1, Ordering::Relaxed);
            ("200 OK", SIGNAL_BODY)
        }
        ("POST", p)
            if p.starts_with("/v3/vehicles/")
                && (p.ends_with("/commands/security/lock")
                    || p.ends_with("/commands/security/unlock")) =>
        {
            counts.command.fetch_add(1, Ordering::Relaxed);
            ("200 OK", LOCK_BODY)
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
            ("404 Not Found", NOT_FOUND_BODY)
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nsc-request-id: bench\r\n\r\n{body}",
        body.len()
    );
    Some((total, response.into_bytes()))
}

async fn connection(mut stream: TcpStream, counts: Arc<Counts>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    loop {
        // Every complete request already read is answered in one write (HTTP/1.1 pipelining).
        while let Some((used, response)) = next_request(&buf, &counts) {
            out.extend_from_slice(&response);
            buf.drain(..used);
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
