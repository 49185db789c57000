//! `smartcar-mcp doctor`, the built binary against the simulator with injected faults: what each
//! check reports, that billed calls wait for a yes, the exit codes, and that no secret or (with
//! `--redact`) id is printed.

use serde_json::Value;
use smartcar_mcp::simulator::{Fault, Simulator};

use crate::common;

const SECRET: &str = "doctor-secret-9f8e7d6c5b4a";
const CLIENT: &str = "client_doctor_4711";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The named check of a `--json` report.
    fn check(&self, name: &str) -> Value {
        self.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {}", self.stdout))
            .clone()
    }

    fn printed(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `doctor ARGS` with only the settings given here (nothing inherited from the shell),
/// `stdin` written to it.
async fn doctor_with(env: &[(&str, String)], args: &[&str], stdin: &str) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut cmd = common::tokio_command();
    cmd.env_clear()
        .env("XDG_DATA_HOME", crate::common::data_home())
        .arg("doctor")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn env_for(sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        ("SMARTCAR_AUTH_URL", sim.auth_url()),
        ("SMARTCAR_API_URL", sim.api_url()),
        ("SMARTCAR_MANAGEMENT_API_URL", sim.management_url()),
        ("SMARTCAR_CLIENT_ID", CLIENT.to_string()),
        ("SMARTCAR_CLIENT_SECRET", SECRET.to_string()),
    ]
}

async fn doctor(sim: &Simulator, args: &[&str]) -> Run {
    doctor_with(&env_for(sim), args, "").await
}

fn no_secret(run: &Run) {
    assert!(!run.printed().contains(SECRET), "{}", run.printed());
}

#[tokio::test]
async fn every_check_passes_against_the_simulator_in_text() {
    let sim = common::simulator().await;
    let run = doctor(&sim, &["--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.printed());
    for name in [
        "environment",
        "token",
        "connections",
        "vehicles",
        "webhooks",
        "management",
        "clock",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "no {name} line: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("expires in 3600 s"), "{}", run.stdout);
    assert!(run.stdout.contains("3 connection(s)"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("All checks passed (2 billed call(s) made)")
    );
    // The count was announced, and exactly that many vehicle requests were made.
    assert!(run.stderr.contains("2 billed call(s)"), "{}", run.stderr);
    let billed = sim.hits("GET", "/vehicles/");
    assert_eq!(billed, 2, "{:?}", sim.requests());
    no_secret(&run);
}

#[tokio::test]
async fn json_with_redact_masks_every_id() {
    let sim = common::simulator().await;
    let run = doctor(&sim, &["--yes", "--json", "--redact", "--vehicles", "3"]).await;
    assert_eq!(run.code, 0, "{}", run.printed());
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["billed_calls"], 6);
    assert_eq!(
        run.check("environment")["details"]["client_id"],
        "<client 1>"
    );
    let vehicles: Vec<Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "vehicles")
        .cloned()
        .collect();
    assert_eq!(vehicles.len(), 3);
    assert_eq!(vehicles[0]["details"]["vehicle"], "<vehicle 1>");
    for id in [
        CLIENT,
        smartcar_mcp::simulator::EV,
        smartcar_mcp::simulator::PHEV,
        smartcar_mcp::simulator::ICE,
        smartcar_mcp::simulator::ALICE,
        smartcar_mcp::simulator::BOB,
    ] {
        assert!(!run.stdout.contains(id), "{id} printed: {}", run.stdout);
    }
    no_secret(&run);
}

#[tokio::test]
async fn billed_calls_wait_for_a_yes_and_the_count_is_said_first() {
    let sim = common::simulator().await;
    let run = doctor_with(&env_for(&sim), &["--json", "--vehicles", "2"], "n\n").await;
    assert_eq!(run.code, 0, "{}", run.printed());
    assert!(run.stderr.contains("4 billed call(s)"), "{}", run.stderr);
    assert!(run.stderr.contains("[y/N]"), "{}", run.stderr);
    let v = run.check("vehicles");
    assert_eq!(v["status"], "skip");
    assert!(v["fix"].as_str().unwrap().contains("--yes"));
    assert_eq!(sim.hits("GET", "/vehicles/"), 0, "nothing billed on a no");

    // No answer at all (stdin closed) is a no too.
    let run = doctor_with(&env_for(&sim), &["--json"], "").await;
    assert_eq!(run.check("vehicles")["status"], "skip");
    assert_eq!(sim.hits("GET", "/vehicles/"), 0);

    let run = doctor_with(&env_for(&sim), &["--json"], "y\n").await;
    assert_eq!(run.check("vehicles")["status"], "ok", "{}", run.stdout);
    assert_eq!(sim.hits("GET", "/vehicles/"), 2);
}

#[tokio::test]
async fn a_wrong_secret_fails_the_token_check_and_says_what_to_fix() {
    let sim = common::simulator().await;
    sim.require_client_secret("the-one-in-the-dashboard");
    let run = doctor(&sim, &["--yes"]).await;
    assert_eq!(run.code, 1, "{}", run.printed());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  token"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("HTTP 401"), "{line}");
    assert!(
        run.stdout.contains("SMARTCAR_CLIENT_SECRET"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 check(s) failed"), "{}", run.stdout);
    assert!(sim.requests().is_empty(), "no API call without a token");
    no_secret(&run);
}

#[tokio::test]
async fn missing_credentials_name_the_variables() {
    let sim = common::simulator().await;
    let env: Vec<_> = env_for(&sim)
        .into_iter()
        .filter(|(k, _)| *k != "SMARTCAR_CLIENT_SECRET")
        .collect();
    let run = doctor_with(&env, &["--json"], "").await;
    assert_eq!(run.code, 1);
    let e = run.check("environment");
    assert_eq!(e["status"], "fail");
    assert!(
        e["fix"]
            .as_str()
            .unwrap()
            .contains("SMARTCAR_CLIENT_SECRET")
    );
    assert!(sim.token_requests().is_empty());
}

#[tokio::test]
async fn a_wrong_api_url_and_no_connections_each_say_what_to_fix() {
    let sim = common::simulator().await;
    let mut env = env_for(&sim);
    // The base without /v3, a common slip.
    env[1].1 = sim.auth_url();
    let run = doctor_with(&env, &["--json", "--yes"], "").await;
    assert_eq!(run.code, 1);
    let c = run.check("connections");
    assert_eq!(c["status"], "fail");
    assert!(
        c["fix"].as_str().unwrap().contains("SMARTCAR_API_URL"),
        "{c}"
    );

    sim.inject(
        Fault::new(
            200,
            r#"{"data":[],"meta":{"pageNumber":1,"pageSize":10,"totalCount":0}}"#,
        )
        .on("GET", "/connections"),
    );
    let run = doctor(&sim, &["--json", "--yes"]).await;
    assert_eq!(run.code, 1);
    let c = run.check("connections");
    assert_eq!(c["status"], "fail");
    assert!(
        c["fix"].as_str().unwrap().contains("Smartcar Connect"),
        "{c}"
    );
    assert_eq!(run.check("vehicles")["status"], "skip");
}

#[tokio::test]
async fn a_404_on_management_is_a_warning_that_says_undocumented() {
    let sim = common::simulator().await;
    sim.inject(
        Fault::smartcar(404, "RESOURCE_NOT_FOUND", "PATH_NOT_FOUND", "no such path")
            .on("GET", "/applications"),
    );
    let run = doctor(&sim, &["--json", "--yes"]).await;
    assert_eq!(run.code, 0, "a warning is not a failure: {}", run.stdout);
    let m = run.check("management");
    assert_eq!(m["status"], "warn");
    assert_eq!(m["details"]["available"], false);
    assert!(
        m["summary"]
            .as_str()
            .unwrap()
            .contains("undocumented by Smartcar"),
        "{m}"
    );
}

#[tokio::test]
async fn a_429_on_the_signal_fails_once_with_the_wait_and_is_not_retried() {
    let sim = common::simulator().await;
    sim.inject(
        Fault::smartcar(429, "RATE_LIMIT", "VEHICLE", "slow down")
            .header("retry-after", "30")
            .on("GET", "/signals/")
            .times(5),
    );
    let run = doctor(&sim, &["--json", "--yes"]).await;
    assert_eq!(run.code, 1);
    let v = run.check("vehicles");
    assert_eq!(v["status"], "fail");
    assert!(v["summary"].as_str().unwrap().contains("HTTP 429"), "{v}");
    assert!(
        v["fix"].as_str().unwrap().contains("retry after 30 s"),
        "{v}"
    );
    assert_eq!(sim.hits("GET", "/signals/"), 1);
}

#[tokio::test]
async fn a_430_names_the_billing_limit_in_plain_words() {
    let sim = common::simulator().await;
    sim.inject(
        Fault::smartcar(430, "BILLING", "VEHICLE_REQUEST_LIMIT", "limit").on("GET", "/vehicles/"),
    );
    let run = doctor(&sim, &["--json", "--yes"]).await;
    assert_eq!(run.code, 1);
    let v = run.check("vehicles");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("HTTP 430 BILLING/VEHICLE_REQUEST_LIMIT"),
        "{v}"
    );
    assert!(v["fix"].as_str().unwrap().contains("for the month"), "{v}");
}

#[tokio::test]
async fn a_504_fails_its_check_and_the_others_still_run() {
    let sim = common::simulator().await;
    sim.inject(Fault::smartcar(504, "UPSTREAM", "TIMEOUT", "slow").on("GET", "/webhooks"));
    let run = doctor(&sim, &["--yes"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  webhooks"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("HTTP 504"), "{line}");
    assert!(run.stdout.contains("temporary problem"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok    management"))
    );
    assert!(run.stdout.lines().any(|l| l.starts_with("ok    clock")));
}

#[tokio::test]
async fn the_receiver_is_found_by_its_url() {
    let sim = common::simulator().await;
    let hooks = doctor(&sim, &["--json"]).await.check("webhooks");
    assert_eq!(hooks["status"], "warn", "unknown without --webhook-url");
    // The seeded state webhook's callback, as if it were this server's.
    let url = "https://fleet.example.com/smartcar/state";
    let run = doctor(&sim, &["--json", "--webhook-url", url]).await;
    let w = run.check("webhooks");
    assert_eq!(w["details"]["receiver_registered"], true, "{w}");
    assert_eq!(w["status"], "ok");
    let run = doctor(
        &sim,
        &[
            "--json",
            "--webhook-url",
            "https://elsewhere.example/webhooks/smartcar",
        ],
    )
    .await;
    let w = run.check("webhooks");
    assert_eq!(w["details"]["receiver_registered"], false);
    assert!(w["fix"].as_str().unwrap().contains("Dashboard"), "{w}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let sim = common::simulator().await;
    let run = doctor(&sim, &["--vehicles", "many"]).await;
    assert_eq!(run.code, 2, "{}", run.printed());
    assert!(run.stderr.contains("--vehicles"), "{}", run.stderr);
    assert!(sim.token_requests().is_empty());
}
