//! Raw TCP helpers for connection-level tests: HTTP/1.1 by hand (so a test controls every byte
//! and can hold a connection half-sent), "closed by the server" detection, and the number of
//! descriptors this process may still open.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A GET with keep-alive, as a client sends it.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
}

/// One response read off a kept-alive connection: status and body (Content-Length framed).
pub async fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    Ok((status, head, body))
}

/// A connection that has sent one GET and read its answer: established, counted, idle.
pub async fn kept_alive(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    s.write_all(get(path).as_bytes()).await.unwrap();
    let (status, head, _) = read_response(&mut s).await.expect("an answer");
    assert_eq!(status, 200, "{head}");
    s
}

/// Whether the server closes `stream` (EOF or reset) within `within`; whatever it sends first
/// (a 408, say) is read and ignored.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Whether every stream is closed by the server before `deadline`.
pub async fn all_closed_by(streams: Vec<TcpStream>, deadline: Instant) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for mut s in streams {
        set.spawn(async move {
            let left = deadline.saturating_duration_since(Instant::now());
            closed_within(&mut s, left).await
        });
    }
    let mut open = 0;
    while let Some(closed) = set.join_next().await {
        if !closed.unwrap() {
            open += 1;
        }
    }
    open
}

/// `n` slowloris connections: each sends the start of a request head one byte at a time
/// (`bytes` bytes, `gap` apart), then nothing. Returns once all have sent their bytes.
pub async fn slowloris(addr: SocketAddr, n: usize, bytes: usize, gap: Duration) -> Vec<TcpStream> {
    let head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connects");
            for b in head.iter().take(bytes) {
                // The server may already have closed it; the caller checks that.
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(gap).await;
            }
            s
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(s) = set.join_next().await {
        out.push(s.unwrap());
    }
    out
}

/// Descriptors this process may open (the soft RLIMIT_NOFILE), from /proc.
pub fn fd_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Descriptors open in process `pid` now.
pub fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// VmRSS of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
