//! Logging that can never stop the server: lines leave through a bounded queue to a writer thread
//! (tracing-appender's non-blocking writer, lossy), so a stderr nobody drains drops lines instead
//! of blocking every tokio worker in `write(2)`; the first line written once the reader is back
//! says how many were dropped. Repeated events (refused sessions, wrong tokens, bad webhook
//! signatures, upstream 429s) are summarised as one line per kind per 10 s, with a count.
//! `--log-format json` writes one JSON object a line for log shippers.

use crate::sync::Locked;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// How often a repeated event may be logged.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// What the session store says when every slot is taken (`mcp::sessions`), which `NotAnError`
/// recognises in rmcp's log line.
pub const SESSIONS_FULL: &str = "the server holds its maximum number of sessions";

/// Log lines queued for the writer thread before new ones are dropped.
pub const QUEUED_LINES: usize = 4_096;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object a line: time, level, target, fields and the spans' fields.
    Json,
}

/// Counts one kind of event that may repeat many times a second, for a log line at most every
/// `SUMMARY_EVERY` with the count since the last line.
#[derive(Debug, Default)]
pub struct Tally {
    last: Option<Instant>,
    unreported: u64,
}

impl Tally {
    pub const fn new() -> Self {
        Tally {
            last: None,
            unreported: 0,
        }
    }

    /// Counts one event; `Some(n)` when a line is due now, for the `n` events since the last.
    pub fn note(&mut self) -> Option<u64> {
        self.note_at(Instant::now())
    }

    /// `Some(n)` for events not yet reported, once a line is due (a periodic flush, so the last
    /// events of a burst are reported too).
    pub fn settle(&mut self) -> Option<u64> {
        self.settle_at(Instant::now())
    }

    fn note_at(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        self.due(now)
    }

    fn settle_at(&mut self, now: Instant) -> Option<u64> {
        if self.unreported == 0 {
            return None;
        }
        self.due(now)
    }

    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < SUMMARY_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// A `Tally` shared by every task that meets its event (a `static` per kind).
pub struct Repeated(Mutex<Tally>);

impl Default for Repeated {
    fn default() -> Self {
        Self::new()
    }
}

impl Repeated {
    pub const fn new() -> Self {
        Repeated(Mutex::new(Tally::new()))
    }

    /// Counts one event; `Some(n)` when it is time to log a line for the `n` events since the
    /// last line (at most once per `SUMMARY_EVERY`), `None` otherwise.
    pub fn hit(&self) -> Option<u64> {
        self.0.locked().note()
    }
}

/// The format `init` installed, for `banner`.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// A line for the person who started the server (where it listens, which simulator it uses),
/// written at once to stderr: plain text, or under `--log-format json` a JSON object like every
/// other line, so a log shipper never meets a line it cannot parse. Only for start-up, where
/// blocking on stderr cannot stop serving.
pub fn banner(message: &str) {
    match FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Text => eprintln!("smartcar-mcp: {message}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "INFO",
                "target": "smartcar_mcp",
                "fields": { "message": format!("smartcar-mcp: {message}") },
            })
        ),
    }
}

/// Keeps the writer thread; dropping it writes out what is queued (at exit).
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Installs the global subscriber: `RUST_LOG` (default `warn`) on stderr, in `format`.
pub fn init(format: LogFormat) -> LogGuard {
    init_with(std::io::stderr(), format)
}

/// `init` writing to `out` (tests give it a pipe).
pub fn init_with<W: Write + Send + 'static>(out: W, format: LogFormat) -> LogGuard {
    let _ = FORMAT.set(format);
    let counter = Arc::new(OnceLock::new());
    let writer = Reporting {
        out,
        counter: counter.clone(),
        reported: 0,
        format,
    };
    let (non_blocking, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("smartcar-mcp-log")
        .finish(writer);
    let _ = counter.set(non_blocking.error_counter());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(non_blocking)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter).with(NotAnError);
    match format {
        LogFormat::Text => registry.with(layer).init(),
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .flatten_event(false),
            )
            .init(),
    }
    LogGuard(guard)
}

/// Drops rmcp's ERROR line for a session refused because every slot is taken: rmcp logs each
/// error of the session store as an internal server error, but a full store is an expected
/// refusal (a 503 the server summarises itself). `mcp::sessions` answers nearly all of them
/// before rmcp sees them; only two clients racing for the last slot reach rmcp.
struct NotAnError;

/// The crate whose log lines `NotAnError` looks at (a target, not an import: only `mcp` names
/// rmcp's items).
const RMCP_CRATE: &str = "rmcp";

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NotAnError {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if *event.metadata().level() != tracing::Level::ERROR
            || event.metadata().target().split("::").next() != Some(RMCP_CRATE)
        {
            return true;
        }
        let mut refused_session = false;
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    let text = format!("{value:?}");
                    refused_session = text.contains("create session")
                        && text.contains(crate::logging::SESSIONS_FULL);
                }
            },
        );
        !refused_session
    }
}

/// The writer thread's end: writes each line, first saying how many were dropped since the
/// last line it wrote.
struct Reporting<W> {
    out: W,
    counter: Arc<OnceLock<ErrorCounter>>,
    reported: usize,
    format: LogFormat,
}

impl<W: Write> Reporting<W> {
    fn report_drops(&mut self) -> std::io::Result<()> {
        let dropped = self.counter.get().map_or(0, ErrorCounter::dropped_lines);
        if dropped <= self.reported {
            return Ok(());
        }
        let n = dropped - self.reported;
        self.reported = dropped;
        let message = format!("{n} log lines were dropped: stderr was not being read");
        let line = match self.format {
            LogFormat::Text => format!(
                "{} WARN smartcar_mcp::logging: {message}\n",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            LogFormat::Json => format!(
                "{}\n",
                serde_json::json!({
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "level": "WARN",
                    "target": "smartcar_mcp::logging",
                    "fields": { "message": message, "dropped": n },
                })
            ),
        };
        self.out.write_all(line.as_bytes())
    }
}

impl<W: Write> Write for Reporting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.report_drops()?;
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcps_error_for_a_full_session_store_is_dropped_and_no_other() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()));
        let subscriber = tracing_subscriber::registry().with(NotAnError).with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: concat!("rmcp", "::transport"), "Internal server error when create session: {SESSIONS_FULL}");
            tracing::error!(target: concat!("rmcp", "::transport"), "Internal server error when get session: boom");
            tracing::error!(target: "smartcar_mcp::x", "create session: {SESSIONS_FULL}");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("when create session"), "{text}");
        assert!(text.contains("boom"), "{text}");
        assert!(text.contains("smartcar_mcp::x"), "{text}");
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_repeated_event_is_logged_once_per_period_with_its_count() {
        let mut t = Tally::new();
        let at = Instant::now();
        assert_eq!(t.note_at(at), Some(1), "the first is logged at once");
        for i in 1..=500 {
            assert_eq!(t.note_at(at + Duration::from_millis(i)), None);
        }
        assert_eq!(
            t.settle_at(at + Duration::from_secs(1)),
            None,
            "not due yet"
        );
        assert_eq!(
            t.note_at(at + SUMMARY_EVERY),
            Some(501),
            "then the count since"
        );
        assert_eq!(t.note_at(at + SUMMARY_EVERY + Duration::from_secs(1)), None);
        assert_eq!(
            t.settle_at(at + SUMMARY_EVERY * 3),
            Some(1),
            "the rest, flushed"
        );
        assert_eq!(
            t.settle_at(at + SUMMARY_EVERY * 5),
            None,
            "nothing left to report"
        );
        assert_eq!(Repeated::new().hit(), Some(1));
    }
}
