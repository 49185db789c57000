//! The server library served over three stdio transports, to measure which one gets rmcp nearest
//! the relay's ceiling: rmcp's `stdio()` (tokio stdio, blocking pool), rmcp's `stdio_pipes()`
//! (non-blocking pipes on the reactor) and a prototype two-thread batched transport, an
//! AsyncRead/AsyncWrite pair whose bytes are moved by two plain threads.
//!
//! Everything else is what `smartcar-mcp` does with no subcommand: the same settings from the
//! environment, tool selection, shared state, handler and runtime.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Parser;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use smartcar_mcp::cli::Cli;
use smartcar_mcp::mcp::{Shared, SmartcarServer};
use smartcar_mcp::tool::selection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stdio,
    Pipes,
    Threads,
    /// rmcp's non-blocking pipe reader, and writes queued to one task that batches them.
    PipesBatched,
    /// `Pipes` on a current-thread runtime instead of the binary's multi-threaded one.
    PipesCurrentThread,
    /// `Threads` on a current-thread runtime.
    ThreadsCurrentThread,
}

/// Bytes read from stdin by a plain thread, handed over in the chunks `read` returned.
pub struct ThreadReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ThreadReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.remaining().min(self.chunk.len() - self.pos);
                let pos = self.pos;
                buf.put_slice(&self.chunk[pos..pos + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                // The reader thread saw end of input: report EOF by filling nothing.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

enum Queue {
    Thread(std::sync::mpsc::Sender<Vec<u8>>),
    Task(tokio::sync::mpsc::UnboundedSender<Vec<u8>>),
}

/// Collects written bytes; a flush hands them to the writer (a thread or a task) without
/// waiting for the write, so answers that are ready together leave in one syscall.
pub struct QueueWriter {
    pending: Vec<u8>,
    queue: Queue,
}

impl AsyncWrite for QueueWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            let sent = match &self.queue {
                Queue::Thread(tx) => tx.send(bytes).is_ok(),
                Queue::Task(tx) => tx.send(bytes).is_ok(),
            };
            if !sent {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// The two-thread stdio pair, plus the writer thread to join so queued answers are written
/// before the process exits.
pub fn threaded_stdio() -> (ThreadReader, QueueWriter, std::thread::JoinHandle<()>) {
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if in_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (out_tx, out_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let writer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Ok(first) = out_rx.recv() {
            batch.extend_from_slice(&first);
            while let Ok(more) = out_rx.try_recv() {
                batch.extend_from_slice(&more);
            }
            if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                return;
            }
            batch.clear();
        }
    });
    (
        ThreadReader {
            rx: in_rx,
            chunk: Vec::new(),
            pos: 0,
        },
        QueueWriter {
            pending: Vec::with_capacity(4096),
            queue: Queue::Thread(out_tx),
        },
        writer,
    )
}

/// A writer whose bytes one task writes to `out`, everything queued at once. Call inside the
/// runtime.
pub fn batched<W: AsyncWrite + Unpin + Send + 'static>(mut out: W) -> QueueWriter {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.recv().await {
            batch.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                batch.extend_from_slice(&more);
            }
            if out.write_all(&batch).await.is_err() || out.flush().await.is_err() {
                return;
            }
            batch.clear();
        }
    });
    QueueWriter {
        pending: Vec::with_capacity(4096),
        queue: Queue::Task(tx),
    }
}

async fn run_until_closed<E: std::fmt::Display>(
    started: Result<rmcp::service::RunningService<rmcp::RoleServer, SmartcarServer>, E>,
) {
    match started {
        Ok(service) => {
            let _ = service.waiting().await;
        }
        Err(e) => eprintln!("bench server: no session: {e}"),
    }
}

/// Serves MCP on stdio like `smartcar-mcp` with no subcommand, over the chosen transport.
pub fn serve(kind: Kind) {
    let cli =
        Cli::try_parse_from(["smartcar-mcp"]).expect("the bench sets valid SMARTCAR_* values");
    let _log = smartcar_mcp::cli::init_logging(cli.opts.log_format);
    let o = &cli.opts;
    let enabled = selection::select(&o.toolsets, &o.tools, &o.exclude_tools, o.read_only)
        .expect("the bench selects no tools");
    let settings = o.settings();
    // The binary runs a multi-threaded runtime; on 2 cores its idle workers cost wake-ups.
    let current = matches!(kind, Kind::PipesCurrentThread | Kind::ThreadsCurrentThread);
    let mut rt = if current {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = rt.enable_all().build().expect("a tokio runtime starts");
    let writer = rt.block_on(async move {
        let shared = Shared::new(settings, &enabled).expect("shared state builds");
        let server = SmartcarServer::new(shared);
        match kind {
            Kind::Stdio => {
                run_until_closed(server.serve(rmcp::transport::stdio()).await).await;
                None
            }
            Kind::Pipes | Kind::PipesCurrentThread => {
                run_until_closed(server.serve(rmcp::transport::stdio_pipes()).await).await;
                None
            }
            Kind::Threads | Kind::ThreadsCurrentThread => {
                let (r, w, writer) = threaded_stdio();
                run_until_closed(server.serve((r, w)).await).await;
                Some(writer)
            }
            Kind::PipesBatched => {
                let (r, w) = rmcp::transport::stdio_pipes();
                run_until_closed(server.serve((r, batched(w))).await).await;
                None
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Some(writer) = writer {
        // Bounded: the writer ends once the transport's sender is dropped with the session.
        for _ in 0..100 {
            if writer.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
