//! Smartcar's webhook protocol: the `SC-Signature` HMAC over a delivery, the VERIFY challenge and
//! its answer, and the window in which this server answers it. What a delivery says is kept by
//! `store::pushed`; this is only how Smartcar signs and proves it.

use crate::sync::Locked;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Smartcar's deliveries hold at most 50 KB; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest VERIFY challenge answered; Smartcar's are short tokens.
pub const MAX_CHALLENGE_CHARS: usize = 128;
/// How long the verification window stays open unless the operator says otherwise.
pub const DEFAULT_VERIFY_WINDOW: Duration = Duration::from_secs(600);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex(HMAC-SHA256(key, message))`, lowercase: Smartcar's signature and challenge answer.
pub fn sign(key: &str, message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// Whether `signature` (lowercase or uppercase hex) signs `body` with `key`, compared in
/// constant time.
pub fn verify(key: &str, body: &[u8], signature: &str) -> bool {
    let sig = signature.trim();
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Whether `event` is a VERIFY, v4 (`eventType: VERIFY`) or v2 (`eventName: verify`).
pub fn is_verify(event: &Value) -> bool {
    event.get("eventType").and_then(Value::as_str) == Some("VERIFY")
        || event
            .get("eventName")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case("verify"))
}

/// The challenge of a VERIFY event, v4 (`data.challenge`) or v2 (`payload.challenge`).
pub fn challenge(event: &Value) -> Option<&str> {
    if event.get("eventType").and_then(Value::as_str) == Some("VERIFY") {
        event.pointer("/data/challenge")?.as_str()
    } else if is_verify(event) {
        event.pointer("/payload/challenge")?.as_str()
    } else {
        None
    }
}

/// Whether a challenge is shaped like Smartcar's: 1 to `MAX_CHALLENGE_CHARS` of `[A-Za-z0-9_-]`.
/// The answer is HMAC(token, challenge), the same function as `SC-Signature`, so a challenge that
/// could be an event body (a JSON object starts with `{`) would make the answer its signature.
pub fn challenge_is_well_formed(challenge: &str) -> bool {
    (1..=MAX_CHALLENGE_CHARS).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// When VERIFY is answered: for a while after start and after each `open` (SIGHUP), so the
/// answer, which proves we hold the token, is given only when the operator expects Smartcar to ask.
pub struct VerifyWindow {
    length: Duration,
    state: Mutex<WindowState>,
}

struct WindowState {
    until: Option<Instant>,
    /// A refusal was logged since the window last closed.
    refusal_logged: bool,
}

impl VerifyWindow {
    /// A window of `length`, open from now; zero never opens.
    pub fn new(length: Duration) -> Self {
        let w = VerifyWindow {
            length,
            state: Mutex::new(WindowState {
                until: None,
                refusal_logged: false,
            }),
        };
        w.open();
        w
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.locked()
    }

    pub fn length(&self) -> Duration {
        self.length
    }

    /// Opens the window for its length from now (a zero length keeps it shut).
    pub fn open(&self) {
        let mut st = self.lock();
        st.until = (!self.length.is_zero()).then(|| Instant::now() + self.length);
        st.refusal_logged = false;
    }

    pub fn is_open(&self) -> bool {
        self.lock().until.is_some_and(|u| Instant::now() < u)
    }

    /// Records a refused VERIFY; true for the first since the window closed, the one to log.
    pub fn first_refusal(&self) -> bool {
        let mut st = self.lock();
        !std::mem::replace(&mut st.refusal_logged, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures_and_challenges_match_smartcars_scheme() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign("Jefe", b"what do ya want for nothing?"), want);
        assert!(verify("Jefe", b"what do ya want for nothing?", want));
        assert!(verify(
            "Jefe",
            b"what do ya want for nothing?",
            &want.to_uppercase()
        ));
        assert!(!verify("Jefe", b"what do ya want for nothing!", want));
        assert!(!verify("jefe", b"what do ya want for nothing?", want));
        assert!(!verify(
            "Jefe",
            b"what do ya want for nothing?",
            &want[..63]
        ));
        assert!(!verify("Jefe", b"what do ya want for nothing?", ""));
        let v4 = json!({"eventType": "VERIFY", "data": {"challenge": "abc"}});
        let v2 = json!({"version": "2.0", "eventName": "verify", "payload": {"challenge": "xyz"}});
        assert_eq!(challenge(&v4), Some("abc"));
        assert_eq!(challenge(&v2), Some("xyz"));
        assert_eq!(challenge(&json!({"eventType": "VEHICLE_STATE"})), None);
    }

    #[test]
    fn only_smartcar_shaped_challenges_are_well_formed() {
        assert!(challenge_is_well_formed("3f1a-challenge_X9"));
        assert!(challenge_is_well_formed(&"a".repeat(MAX_CHALLENGE_CHARS)));
        for bad in ["", "{\"eventType\":1}", "a b", "a.b", "é", "[1]", "\"x\""] {
            assert!(!challenge_is_well_formed(bad), "{bad}");
        }
        assert!(!challenge_is_well_formed(
            &"a".repeat(MAX_CHALLENGE_CHARS + 1)
        ));
        let v2 = json!({"eventName": "VERIFY", "payload": {"challenge": "x"}});
        assert!(is_verify(&v2));
        assert!(!is_verify(&json!({"eventType": "VEHICLE_STATE"})));
    }

    #[test]
    fn the_verification_window_opens_for_its_length_and_zero_never_opens() {
        let shut = VerifyWindow::new(Duration::ZERO);
        assert!(!shut.is_open());
        shut.open();
        assert!(!shut.is_open(), "reopening a zero window keeps it shut");
        assert!(shut.first_refusal());
        assert!(!shut.first_refusal(), "one log line per closed window");
        let w = VerifyWindow::new(Duration::from_secs(60));
        assert!(w.is_open());
        w.state.lock().unwrap().until = Some(Instant::now());
        assert!(!w.is_open());
        assert!(w.first_refusal());
        assert!(!w.first_refusal());
        w.open();
        assert!(w.is_open());
        w.state.lock().unwrap().until = Some(Instant::now());
        assert!(w.first_refusal(), "a new closed window logs again");
    }
}
