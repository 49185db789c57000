//! The stdio transport: newline-delimited JSON-RPC, with a line-level filter in front of rmcp.
//!
//! rmcp's own stdio transport drops a line that is not JSON without a word and answers other bad
//! lines with an error that has no `id`. Here every line is read with a bound and classified
//! (`malformed::classify`): a good message goes to rmcp, a bad one is answered with -32700 or
//! -32600 by the filter itself, and the session carries on. Both rmcp's messages and the
//! filter's answers are written whole, one line at a time, through one lock.
//!
//! The filter also holds the session's rules rmcp does not: one `initialize` per session, and one
//! request per id in flight (`mcp::flight`); a message breaking either is answered -32600.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage, ServerJsonRpcMessage,
};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};

use super::flight::{self, Flights};
use super::malformed::{INVALID_REQUEST, Incoming, classify, error_response};

/// stdio is one session: its requests are held under this name.
const SESSION: &str = "stdio";

/// The longest line read (4 MiB). A longer line is answered with -32600 and discarded as it
/// arrives, never held in memory; a shorter one that is too big for any tool still reaches the
/// pipeline, which refuses it with the size and the request's own id.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

type Out<W> = Arc<Mutex<W>>;

/// A server transport over a byte stream pair (stdin and stdout in production).
pub struct FilteredLines<W> {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    out: Out<W>,
    flights: Flights,
}

/// What the reader knows of the session.
struct Session {
    flights: Flights,
    initialized: AtomicBool,
}

impl<W: AsyncWrite + Unpin + Send + 'static> FilteredLines<W> {
    /// Starts reading `read` on a task of its own; ends (and so ends the session) at EOF.
    pub fn new<R: AsyncRead + Unpin + Send + 'static>(read: R, write: W) -> Self {
        let out = Arc::new(Mutex::new(write));
        let (tx, incoming) = mpsc::channel(16);
        let flights = Flights::default();
        let session = Session {
            flights: flights.clone(),
            initialized: AtomicBool::new(false),
        };
        tokio::spawn(read_lines(read, tx, out.clone(), session));
        FilteredLines {
            incoming,
            out,
            flights,
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(out: &Mutex<W>, line: &[u8]) -> std::io::Result<()> {
    let mut w = out.lock().await;
    w.write_all(line).await?;
    w.flush().await
}

async fn answer<W: AsyncWrite + Unpin>(out: &Mutex<W>, error: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(error).unwrap_or_default();
    line.push(b'\n');
    write_line(out, &line).await
}

/// Reads lines until EOF, each at most `MAX_LINE_BYTES`, and routes them.
async fn read_lines<R, W>(
    read: R,
    tx: mpsc::Sender<ClientJsonRpcMessage>,
    out: Out<W>,
    session: Session,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(read);
    let mut line: Vec<u8> = Vec::new();
    // Set from the moment a line passes the bound until its newline arrives.
    let mut oversized = false;
    loop {
        let (used, complete) = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(buf) => {
                let (chunk, complete) = match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => (&buf[..i], true),
                    None => (buf, false),
                };
                if !oversized {
                    if line.len() + chunk.len() > MAX_LINE_BYTES {
                        oversized = true;
                        line = Vec::new();
                    } else {
                        line.extend_from_slice(chunk);
                    }
                }
                (chunk.len() + usize::from(complete), complete)
            }
            Err(e) => {
                tracing::warn!("cannot read stdin: {e}");
                break;
            }
        };
        reader.consume(used);
        if !complete {
            continue;
        }
        let keep_going = if oversized {
            oversized = false;
            tracing::warn!("refused a stdin line longer than {MAX_LINE_BYTES} bytes");
            let e = error_response(
                Value::Null,
                INVALID_REQUEST,
                &format!("Invalid request: message longer than {MAX_LINE_BYTES} bytes"),
            );
            answer(&out, &e).await.is_ok()
        } else {
            route(&line, &tx, &out, &session).await
        };
        line.clear();
        if !keep_going {
            return;
        }
    }
    // A last line without its newline still counts.
    if !line.is_empty() && !oversized {
        route(&line, &tx, &out, &session).await;
    }
}

/// Hands a good line to rmcp, answers a bad one; false once nobody is listening any more.
async fn route<W: AsyncWrite + Unpin>(
    line: &[u8],
    tx: &mpsc::Sender<ClientJsonRpcMessage>,
    out: &Mutex<W>,
    session: &Session,
) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match classify(line) {
        Incoming::Message(m) => match admit(&m, session) {
            Ok(()) => tx.send(*m).await.is_ok(),
            Err(e) => answer(out, &e).await.is_ok(),
        },
        Incoming::Ignore => true,
        Incoming::Refuse(e) => {
            tracing::info!(code = %e["error"]["code"], "answered a malformed stdin line");
            answer(out, &e).await.is_ok()
        }
    }
}

/// The session's rules: a second `initialize`, or a request whose id is still in flight, is
/// refused; a cancelled request's id stays taken (`mcp::flight`).
fn admit(m: &ClientJsonRpcMessage, session: &Session) -> Result<(), Value> {
    match m {
        JsonRpcMessage::Request(r) => {
            if matches!(r.request, ClientRequest::InitializeRequest(_))
                && session.initialized.swap(true, Ordering::Relaxed)
            {
                return Err(flight::reinitialize(Some(&r.id)));
            }
            // Its answer, written by `send` below, ends it.
            if !session.flights.hold(SESSION, r.id.clone()) {
                return Err(flight::duplicate(&r.id));
            }
        }
        JsonRpcMessage::Notification(n) => {
            if let ClientNotification::CancelledNotification(c) = &n.notification
                && let Some(id) = &c.params.request_id
            {
                session.flights.cancel(SESSION, id.clone());
            }
        }
        _ => {}
    }
    Ok(())
}

impl<W: AsyncWrite + Unpin + Send + 'static> Transport<RoleServer> for FilteredLines<W> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let out = self.out.clone();
        match &item {
            JsonRpcMessage::Response(r) => self.flights.end(SESSION, r.id.clone()),
            JsonRpcMessage::Error(e) => {
                if let Some(id) = &e.id {
                    self.flights.end(SESSION, id.clone());
                }
            }
            _ => {}
        }
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            write_line(&out, &line).await
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        self.out.lock().await.flush().await
    }
}
