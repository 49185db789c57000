//! Connection-level limits of every HTTP listener (src/listen.rs): slowloris heads closed by the
//! header timeout, the connection cap's 503, idle keep-alives closed while SSE streams stay, slow
//! bodies cut, TCP_NODELAY on the server's own sockets, and the real binary's memory after 2,000
//! idle connections. Bounds are generous "eventually" bounds, never timings.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;
use smartcar_mcp::mcp::Shared;
use smartcar_mcp::secret::Secret;
use smartcar_mcp::settings::ListenLimits;
use smartcar_mcp::simulator::Simulator;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::common::net::{self, all_closed_by, closed_within, kept_alive, read_response};
use crate::common::{self};

/// Limits that leave the one under test as the only one to act.
fn limits() -> ListenLimits {
    ListenLimits {
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        max_connections: 4096,
    }
}

struct Mcp {
    addr: SocketAddr,
    _sim: Simulator,
    _served: common::Served,
}

async fn mcp(limits: ListenLimits) -> Mcp {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.listen = limits;
    let served = common::serve_http(common::shared(s)).await;
    Mcp {
        addr: served.addr,
        _sim: sim,
        _served: served,
    }
}

/// The standalone receiver of `--webhook-addr`, with a management token so it answers events.
async fn webhook(limits: ListenLimits) -> (SocketAddr, Simulator, Arc<Shared>) {
    let sim = common::simulator().await;
    let mut s = common::settings(&sim);
    s.serving.listen = limits;
    s.serving.management_token = Some(Secret::new("amt-listeners-test"));
    let shared = common::shared(s);
    let url = smartcar_mcp::mcp::webhook::listen(
        shared.clone(),
        "127.0.0.1:0",
        smartcar_mcp::mcp::http::host_allow_list(&[]).unwrap(),
    )
    .await
    .unwrap();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (addr, sim, shared)
}

/// Slowloris connections the test can afford with the descriptor limit: the server is in this
/// process too, so each costs two.
fn affordable(wanted: usize) -> usize {
    wanted.min(net::fd_limit().saturating_sub(300) / 2)
}

/// A normal MCP client: the handshake and tools/list over Streamable HTTP.
async fn mcp_client_is_served(addr: SocketAddr) {
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ().serve(transport).await.expect("initialize handshake");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    let _ = client.cancel().await;
}

#[tokio::test]
async fn slowloris_heads_are_closed_by_the_header_timeout_while_a_client_is_served() {
    let server = mcp(ListenLimits {
        header_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let n = affordable(500);
    let (held, ()) = tokio::join!(
        net::slowloris(server.addr, n, 6, Duration::from_millis(100)),
        mcp_client_is_served(server.addr),
    );
    assert_eq!(held.len(), n);
    let still_open = all_closed_by(held, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(still_open, 0, "of {n} slowloris connections");
    mcp_client_is_served(server.addr).await;
}

/// Holds `cap` idle connections, then checks the next ones are refused with 503 and that
/// connections are served (`served`: the status `path` gets) again once some are released.
async fn the_cap_refuses_then_recovers(addr: SocketAddr, cap: usize, path: &str, served: u16) {
    let mut held = Vec::new();
    for _ in 0..cap {
        let (s, status) = answered(addr, path).await;
        assert_eq!(status, served);
        held.push(s);
    }
    // Accept never waits for a slot: every one beyond the cap is answered at once.
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(net::get(path).as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
            .await
            .expect("the refusal comes without waiting for a slot")
            .expect("a response before the close");
        assert_eq!(answer.0, 503, "{}", answer.1);
        assert!(answer.1.contains("Retry-After: "), "{}", answer.1);
        assert!(answer.1.contains("Connection: close"), "{}", answer.1);
        assert!(closed_within(&mut s, Duration::from_secs(10)).await);
    }
    held.truncate(cap - 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = answered(addr, path).await;
        if status == served {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "no slot came free after 3 closes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The held connections were not disturbed by the refusals.
    let s = &mut held[0];
    s.write_all(net::get(path).as_bytes()).await.unwrap();
    assert_eq!(read_response(s).await.unwrap().0, served);
}

#[tokio::test]
async fn beyond_max_connections_the_newest_gets_503_and_accept_never_blocks() {
    let server = mcp(ListenLimits {
        max_connections: 8,
        ..limits()
    })
    .await;
    the_cap_refuses_then_recovers(server.addr, 8, "/healthz", 200).await;
}

/// The MCP handshake over plain HTTP: the session id, with `notifications/initialized` sent.
async fn session(addr: SocketAddr) -> String {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/mcp");
    let r = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "listeners-test", "version": "1" } } })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .body(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    id
}

/// A `GET /mcp` SSE stream of session `id`, its head read: open until the server ends it.
async fn sse_stream(addr: SocketAddr, id: &str) -> TcpStream {
    let mut sse = TcpStream::connect(addr).await.unwrap();
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {id}\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n"
    );
    sse.write_all(get.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut sse, &mut b)
            .await
            .unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    sse
}

#[tokio::test]
async fn idle_keep_alives_are_closed_but_an_open_sse_stream_is_not() {
    let server = mcp(ListenLimits {
        idle_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let id = session(server.addr).await;
    let mut sse = sse_stream(server.addr, &id).await;

    let mut idle = kept_alive(server.addr, "/healthz").await;
    // Four idle timeouts: the idle connection goes, the stream stays.
    let (stream_closed, idle_closed) = tokio::join!(
        closed_within(&mut sse, Duration::from_secs(4)),
        closed_within(&mut idle, Duration::from_secs(20)),
    );
    assert!(
        idle_closed,
        "an idle keep-alive connection outlived the idle timeout"
    );
    assert!(!stream_closed, "the SSE stream was cut");
}

#[tokio::test]
async fn a_slow_body_is_cut_with_408() {
    let server = mcp(ListenLimits {
        body_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n",
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    // 1,000 bytes at one per 200 ms would take 200 s.
    let writer = tokio::spawn(async move {
        for _ in 0..1000 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut answer),
    )
    .await;
    writer.abort();
    assert!(read.is_ok(), "the connection was still open after 20 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}

#[tokio::test]
async fn shutdown_ends_sse_streams_and_idle_connections_and_serve_on_returns() {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        smartcar_mcp::mcp::http::serve_on(listener, shared, &[], async {
            let _ = stopped.await;
        })
        .await
    });
    let mut sse = sse_stream(addr, &session(addr).await).await;
    let mut idle = kept_alive(addr, "/healthz").await;
    stop.send(()).unwrap();
    let (sse_closed, idle_closed) = tokio::join!(
        closed_within(&mut sse, Duration::from_secs(20)),
        closed_within(&mut idle, Duration::from_secs(20)),
    );
    assert!(
        sse_closed && idle_closed,
        "sse {sse_closed}, idle {idle_closed}"
    );
    let served = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve_on returns after shutdown");
    served.unwrap().expect("a clean stop");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// TCP_NODELAY of the server's side of `client`, read off the socket this process accepted.
fn server_side_nodelay(server: SocketAddr, client: &TcpStream) -> bool {
    let client = client.local_addr().unwrap();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .parse::<RawFd>()
        else {
            continue;
        };
        // SAFETY: only getsockname/getpeername/getsockopt are called, and nothing is closed. If
        // another thread closes this descriptor meanwhile, the calls fail or name another socket,
        // which the address match below rejects.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let (Ok(local), Ok(peer)) = (sock.local_addr(), sock.peer_addr()) else {
            continue;
        };
        if local.as_socket() == Some(server) && peer.as_socket() == Some(client) {
            return sock.tcp_nodelay().unwrap();
        }
    }
    panic!("no accepted socket from {client} to {server} in this process");
}

/// A connection that got one answer from `addr` (so it has been accepted), and its status.
async fn answered(addr: SocketAddr, path: &str) -> (TcpStream, u16) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(net::get(path).as_bytes()).await.unwrap();
    let status = read_response(&mut s).await.unwrap().0;
    (s, status)
}

#[tokio::test]
async fn every_listener_sets_tcp_nodelay_on_its_connections() {
    let server = mcp(limits()).await;
    let (s, _) = answered(server.addr, "/healthz").await;
    assert!(server_side_nodelay(server.addr, &s), "MCP listener");

    let (hook, _sim, _shared) = webhook(limits()).await;
    let (s, _) = answered(hook, "/webhooks/smartcar").await;
    assert!(server_side_nodelay(hook, &s), "webhook listener");

    let sim = common::simulator().await;
    let (s, _) = answered(sim.addr(), "/").await;
    assert!(server_side_nodelay(sim.addr(), &s), "simulator");
}

#[tokio::test]
async fn the_webhook_receiver_closes_slowloris_heads_and_keeps_serving() {
    let (addr, _sim, _shared) = webhook(ListenLimits {
        header_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let n = affordable(500);
    let held = net::slowloris(addr, n, 6, Duration::from_millis(100)).await;
    // An unsigned event is refused, and answered: the receiver is reachable.
    let status = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/smartcar"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let still_open = all_closed_by(held, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(still_open, 0, "of {n} slowloris connections");
}

#[tokio::test]
async fn the_webhook_receiver_refuses_beyond_its_cap_and_recovers() {
    let (addr, _sim, _shared) = webhook(ListenLimits {
        max_connections: 8,
        ..limits()
    })
    .await;
    // Its one route is POST; a GET of it, answered 405, holds a kept-alive connection as well.
    the_cap_refuses_then_recovers(addr, 8, "/webhooks/smartcar", 405).await;
}

/// The binary's address, from its `listening on` line on stderr; the rest of stderr is drained.
async fn listening_on(stderr: tokio::process::ChildStderr) -> SocketAddr {
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return Some(rest.trim_end_matches("/mcp").parse().unwrap());
            }
        }
        None
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
        .ok()
        .flatten()
        .expect("a `listening on` line on stderr")
}

/// Waits until `done` holds, polling, for at most `within`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

#[tokio::test]
async fn the_binary_closes_two_thousand_idle_connections_and_gives_the_memory_back() {
    let mut child = common::tokio_command()
        .args(["serve", "--http", "127.0.0.1:0", "--simulator"])
        .args(["--idle-timeout-s", "1", "--audit-db", "off"])
        .env_clear()
        .env("XDG_DATA_HOME", common::data_home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let pid = child.id().unwrap();
    let addr = listening_on(child.stderr.take().unwrap()).await;

    // Warm-up: the pools and buffers a first burst of connections grows.
    let warm: Vec<TcpStream> =
        futures::future::join_all((0..200).map(|_| kept_alive(addr, "/healthz"))).await;
    assert_eq!(
        all_closed_by(warm, Instant::now() + Duration::from_secs(30)).await,
        0
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (fds_before, rss_before) = (net::fds_of(pid), net::rss_kib(pid));

    // The child inherits this process's limit; both sides need one descriptor per connection.
    let n = 2000.min(net::fd_limit().saturating_sub(200));
    let mut held = Vec::with_capacity(n);
    for batch in 0..n.div_ceil(100) {
        let size = 100.min(n - batch * 100);
        held.extend(
            futures::future::join_all((0..size).map(|_| kept_alive(addr, "/healthz"))).await,
        );
    }
    let (fds_peak, rss_peak) = (net::fds_of(pid), net::rss_kib(pid));
    let still_open = all_closed_by(held, Instant::now() + Duration::from_secs(60)).await;
    assert_eq!(still_open, 0, "of {n} idle connections");
    assert!(
        eventually(Duration::from_secs(20), || net::fds_of(pid)
            <= fds_before + 4)
        .await,
        "server descriptors: {fds_before} before, {fds_peak} at the peak, {} now",
        net::fds_of(pid)
    );
    // Generous: what the connections held (about 20 KiB each) must be given back, apart from
    // allocator slack.
    let bound = rss_before + 8 * 1024;
    let returned = eventually(Duration::from_secs(20), || net::rss_kib(pid) <= bound).await;
    eprintln!(
        "listeners: {n} idle connections, fds {fds_before} -> {fds_peak} -> {}, VmRSS KiB {rss_before} -> {rss_peak} -> {}",
        net::fds_of(pid),
        net::rss_kib(pid)
    );
    assert!(
        returned,
        "VmRSS {rss_before} KiB before, {rss_peak} at the peak, {} now (bound {bound})",
        net::rss_kib(pid)
    );
    child.kill().await.unwrap();
}
