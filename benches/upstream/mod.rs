//! The canned upstream of the end-to-end bench: a bare HTTP/1.1 server on 127.0.0.1 answering
//! fixed JSON for the token, one signal and the lock and unlock commands, so the upstream's own cost stays far
//! below the server's and the numbers measure the server, not a framework. It also answers the
//! signal list, the connection list and any command, and injects the fault `fault` names
//! (the soak bench switches it on a schedule; the other benches leave it `NORMAL`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

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

/// The signal list: the one documented signal on its page.
const SIGNALS_BODY: &str = concat!(
    r#"{"data":[{"id":"tractionbattery-stateofcharge","type":"signal","attributes":{"code":"tractionbattery-stateofcharge","#,
    r#""name":"StateOfCharge","group":"TractionBattery","status":{"value":"SUCCESS"},"body":{"unit":"percent","value":75}},"#,
    r#""meta":{"retrievedAt":1752104218549,"oemUpdatedAt":1752104118549}}],"#,
    r#""meta":{"page":1,"pageSize":1,"totalCount":1}}"#
);

/// The connection list: one connection (https://smartcar.com/docs/api-reference/connections).
const CONNECTIONS_BODY: &str = concat!(
    r#"{"data":[{"id":"conn-1","type":"connection","attributes":{"permissions":["read_battery"],"#,
    r#""vehicle":{"make":"TESLA","model":"Model 3","year":2023,"mode":"live"}},"#,
    r#""relationships":{"vehicle":{"data":{"id":"36ab27d0-fd9d-4455-823a-ce30af709ffc","type":"vehicle"}},"#,
    r#""user":{"data":{"id":"93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4","type":"user"}}}}],"#,
    r#""meta":{"pageNumber":1,"pageSize":10,"totalCount":1}}"#
);

const RATE_LIMIT_BODY: &str = r#"{"errors":[{"status":"429","type":"RATE_LIMIT","code":"VEHICLE","title":"Rate limited","detail":"Too many requests for this vehicle."}]}"#;

const SERVER_ERROR_BODY: &str = r#"{"errors":[{"status":"500","type":"SERVER","code":"INTERNAL","title":"Server error","detail":"The canned upstream failed on purpose."}]}"#;

/// Faults the upstream injects into API answers (never the token's), by value of `fault`.
pub const NORMAL: u8 = 0;
/// Every answer is 429 with `Retry-After: 1`.
pub const RATE_LIMITED: u8 = 1;
/// Half the answers are 500, 502 or 503.
pub const SERVER_ERROR: u8 = 2;
/// Half the answers come after 2 to 4 s.
pub const SLOW: u8 = 3;
/// Half the requests get no answer: the connection is closed once they are read.
pub const RESET: u8 = 4;

const NOT_FOUND_BODY: &str = r#"{"errors":[{"status":"404","type":"RESOURCE_NOT_FOUND","code":"PATH_NOT_FOUND","title":"Not found","detail":"The canned upstream answers only the token, one signal and lock."}]}"#;

/// Requests answered, by kind: proof that every measured call really reached the upstream.
#[derive(Default)]
pub struct Counts {
    pub token: AtomicU64,
    pub signal: AtomicU64,
    pub command: AtomicU64,
    pub other: AtomicU64,
    /// Answers turned into a fault (429, 5xx, slow or reset).
    pub faulted: AtomicU64,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    /// The fault now injected: `NORMAL`, `RATE_LIMITED`, `SERVER_ERROR`, `SLOW` or `RESET`.
    /// Only the soak bench sets it; e2e includes this module without using it.
    #[allow(dead_code)]
    pub fault: Arc<AtomicU8>,
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
    let fault = Arc::new(AtomicU8::new(NORMAL));
    let (c, f) = (counts.clone(), fault.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, c.clone(), f.clone()));
        }
    });
    Ok(Upstream {
        addr,
        counts,
        fault,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What to do with one request.
enum Answer {
    Now(Vec<u8>),
    After(Duration, Vec<u8>),
    Reset,
}

/// Length of the first complete request in `buf` and its answer, or `None` if more bytes are
/// needed.
fn next_request(buf: &[u8], counts: &Counts, fault: u8) -> Option<(usize, Answer)> {
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
    let path = path.split('?').next().unwrap_or(path);
    let api = path.starts_with("/v3/") || path.starts_with("/management/");
    let half = fastrand::bool();
    if api && fault != NORMAL {
        let (status, body, delay) = match fault {
            RATE_LIMITED => ("429 Too Many Requests", RATE_LIMIT_BODY, None),
            SERVER_ERROR if half => (
                [
                    "500 Internal Server Error",
                    "502 Bad Gateway",
                    "503 Service Unavailable",
                ][fastrand::usize(..3)],
                SERVER_ERROR_BODY,
                None,
            ),
            SLOW if half => (
                "",
                "",
                Some(Duration::from_millis(fastrand::u64(2000..4000))),
            ),
            RESET if half => {
                counts.faulted.fetch_add(1, Ordering::Relaxed);
                return Some((total, Answer::Reset));
            }
            _ => ("", "", None),
        };
        if !status.is_empty() {
            counts.faulted.fetch_add(1, Ordering::Relaxed);
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nsc-request-id: bench\r\n\r\n{body}",
                body.len()
            );
            return Some((total, Answer::Now(response.into_bytes())));
        }
        if let Some(delay) = delay {
            counts.faulted.fetch_add(1, Ordering::Relaxed);
            return Some((total, Answer::After(delay, canned(method, path, counts))));
        }
    }
    Some((total, Answer::Now(canned(method, path, counts))))
}

/// The fault-free answer to one request.
fn canned(method: &str, path: &str, counts: &Counts) -> Vec<u8> {
    let (status, body) = match (method, path) {
        ("POST", "/oauth2/token") => {
            counts.token.fetch_add(1, Ordering::Relaxed);
            ("200 OK", TOKEN_BODY)
        }
        ("GET", p) if p.starts_with("/v3/vehicles/") && p.contains("/signals/") => {
            counts.signal.fetch_add(1, Ordering::Relaxed);
            ("200 OK", SIGNAL_BODY)
        }
        ("GET", p) if p.starts_with("/v3/vehicles/") && p.ends_with("/signals") => {
            counts.signal.fetch_add(1, Ordering::Relaxed);
            ("200 OK", SIGNALS_BODY)
        }
        ("GET", "/v3/connections") => {
            counts.other.fetch_add(1, Ordering::Relaxed);
            ("200 OK", CONNECTIONS_BODY)
        }
        ("POST", p) if p.starts_with("/v3/vehicles/") && p.contains("/commands/") => {
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
    response.into_bytes()
}

async fn connection(mut stream: TcpStream, counts: Arc<Counts>, fault: Arc<AtomicU8>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    loop {
        // Every complete request already read is answered in one write (HTTP/1.1 pipelining).
        while let Some((used, answer)) = next_request(&buf, &counts, fault.load(Ordering::Relaxed))
        {
            buf.drain(..used);
            match answer {
                Answer::Now(response) => out.extend_from_slice(&response),
                Answer::After(delay, response) => {
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                    tokio::time::sleep(delay).await;
                    out.extend_from_slice(&response);
                }
                // Answers already due are sent; the rest of the connection is dropped unanswered.
                Answer::Reset => {
                    let _ = stream.write_all(&out).await;
                    return;
                }
            }
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
