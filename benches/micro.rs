//! Micro benchmarks of the server's own per-call work: validation, request building, result
//! shaping and catalogue lookups, in process and without I/O. Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

use smartcar_mcp::catalogue::{self, TOOLS, ToolSpec};
use smartcar_mcp::mcp;
use smartcar_mcp::settings::{LocationMode, Settings};
use smartcar_mcp::tool::{arguments, bound, call, shape};
use smartcar_mcp::upstream::{Executor, build_request};

const API: &str = "https://vehicle.api.smartcar.com/v3";
const MANAGEMENT: &str = "https://management.api.smartcar.com/v3";

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => unreachable!("the fixtures below are objects"),
    }
}

fn spec(name: &str) -> &'static ToolSpec {
    catalogue::tool(name).unwrap_or_else(|| panic!("tools.yaml has no tool {name}"))
}

/// Raw arguments as a model sends them: the alias and the whole float exercise the rewriting
/// paths, which are the expensive ones.
fn get_signal_raw() -> Map<String, Value> {
    object(json!({
        "vehicle_id": "36ab27d0-fd9d-4455-823a-ce30af709ffc",
        "user_id": "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4",
        "signal_code": "charge.ischarging",
    }))
}

fn set_charge_limit_raw() -> Map<String, Value> {
    object(json!({
        "vehicle_id": "36ab27d0-fd9d-4455-823a-ce30af709ffc",
        "user_id": "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4",
        "percent": 80.0,
    }))
}

fn list_connections_raw() -> Map<String, Value> {
    object(json!({
        "userId": "93b3ee5b-2ea2-4c52-9f0f-3e3c0cf1a1b4",
        "vehicleMode": "live",
        "pageNumber": 2,
        "pageSize": 50,
    }))
}

/// The documented single-signal answer (https://smartcar.com/docs/api-reference/get-signal).
fn signal_body() -> Value {
    json!({
        "id": "charge-ischarging", "type": "signal",
        "attributes": {"code": "charge-ischarging", "name": "IsCharging", "group": "Charge",
                       "status": {"value": "SUCCESS"}, "body": {"value": true}},
        "meta": {"retrievedAt": 1752104218549_u64, "oemUpdatedAt": 1752104118549_u64},
        "links": {"self": "/vehicles/36ab27d0-fd9d-4455-823a-ce30af709ffc/signals/charge-ischarging"}
    })
}

/// The documented command answer (https://smartcar.com/docs/api-reference/charging/set-charge-limit).
fn command_body() -> Value {
    json!({"data": {
        "id": "exec_9876543210", "type": "command-execution",
        "attributes": {"commandType": "charge-set-limit", "status": {"value": "SUCCESS"},
                       "executionMode": "sync", "parameters": {"percent": 80}},
        "meta": {"executedAt": "2024-01-01T12:00:00Z", "completedAt": "2024-01-01T12:00:02Z",
                 "durationInSeconds": 2}
    }})
}

fn validation(c: &mut Criterion) {
    arguments::warm_up(&(0..smartcar_mcp::catalogue::TOOLS.len()).collect::<Vec<_>>());
    let mut g = c.benchmark_group("validate");
    for (name, raw) in [
        ("get_signal", get_signal_raw()),
        ("set_charge_limit", set_charge_limit_raw()),
    ] {
        let spec = spec(name);
        // A refusal here would benchmark the error path instead of the call path.
        assert!(arguments::check(spec, Some(&raw)).is_ok(), "{name} fixture");
        g.bench_function(name, |b| {
            b.iter(|| arguments::check(black_box(spec), black_box(Some(&raw))))
        });
    }
    g.finish();
}

fn request_building(c: &mut Criterion) {
    let mut g = c.benchmark_group("build_request");
    for (name, label, raw) in [
        ("get_signal", "get_signal (path segments)", get_signal_raw()),
        (
            "list_connections",
            "list_connections (query)",
            list_connections_raw(),
        ),
        (
            "set_charge_limit",
            "set_charge_limit (body)",
            set_charge_limit_raw(),
        ),
    ] {
        let spec = spec(name);
        let args = arguments::check(spec, Some(&raw)).expect("fixture is valid");
        g.bench_function(label, |b| {
            b.iter(|| build_request(black_box(spec), black_box(&args), API, MANAGEMENT))
        });
    }
    g.finish();
}

/// What `call::execute` does with a 2xx answer: redact, shape, bound, and the compact-JSON
/// text block, serialized once by `bound::serialize_within` as on the call path.
fn shape_answer(spec: &ToolSpec, args: &Map<String, Value>, body: &Value, cap: usize) -> String {
    let mut body = body.clone();
    shape::redact(&mut body, spec.redact);
    match shape::shape(spec, args, 200, Some(&body)) {
        Ok(shaped) => bound::serialize_within(shaped.structured, cap).1,
        Err(failed) => failed.to_json().to_string(),
    }
}

fn shaping(c: &mut Criterion) {
    let settings = Settings::for_urls("http://127.0.0.1:9", API, MANAGEMENT);
    let cap = settings.serving.max_result_bytes;
    let exec = Executor::new(Arc::new(settings.upstream)).expect("an HTTP client builds offline");
    let mut g = c.benchmark_group("shape");
    for (name, kind, raw, body) in [
        ("get_signal", "read", get_signal_raw(), signal_body()),
        (
            "set_charge_limit",
            "command",
            set_charge_limit_raw(),
            command_body(),
        ),
    ] {
        let spec = spec(name);
        let args = arguments::check(spec, Some(&raw)).expect("fixture is valid");
        assert!(
            shape::shape(spec, &args, 200, Some(&body)).is_ok(),
            "{name} fixture shapes as a success"
        );
        g.bench_function(format!("{name} ({kind}): redact+shape+bound+text"), |b| {
            b.iter(|| shape_answer(spec, black_box(&args), black_box(&body), cap))
        });
        g.bench_function(format!("{name} ({kind}): shape::shape alone"), |b| {
            b.iter(|| shape::shape(spec, black_box(&args), 200, black_box(Some(&body))))
        });
        g.bench_function(format!("{name} ({kind}): dry_run"), |b| {
            b.iter(|| call::dry_run(&exec, black_box(spec), black_box(&args)))
        });
    }
    let read = signal_body();
    let command = command_body();
    let secrets = spec("list_application_secrets").redact;
    g.bench_function("redact signal body (10 keys)", |b| {
        b.iter_batched(
            || read.clone(),
            |mut v| {
                shape::redact(&mut v, black_box(secrets));
                v
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("command_status", |b| {
        b.iter(|| shape::reported_status(black_box(&command)))
    });
    g.finish();
}

/// The server's own work for one call, end to end in process: everything but the I/O, the MCP
/// framing and the HTTP client.
fn per_call(c: &mut Criterion) {
    let cap = Settings::for_urls("http://127.0.0.1:9", API, MANAGEMENT)
        .serving
        .max_result_bytes;
    let mut g = c.benchmark_group("per_call");
    for (name, raw, body) in [
        ("get_signal", get_signal_raw(), signal_body()),
        ("set_charge_limit", set_charge_limit_raw(), command_body()),
    ] {
        let spec = spec(name);
        g.bench_function(format!("{name}: validate+build+shape"), |b| {
            b.iter(|| {
                let args = arguments::check(spec, Some(black_box(&raw))).expect("valid");
                let req = build_request(spec, &args, API, MANAGEMENT);
                (req, shape_answer(spec, &args, black_box(&body), cap))
            })
        });
    }
    g.finish();
}

fn lookups(c: &mut Criterion) {
    // Each lookup must take the path its name says, not fall through to a miss.
    assert!(catalogue::resolve_signal("TractionBattery.StateOfCharge").is_some());
    assert!(catalogue::resolve_signal("battery.charge.level").is_none());
    let mut g = c.benchmark_group("catalogue");
    g.bench_function("tool by name", |b| {
        b.iter(|| catalogue::tool(black_box("set_charge_limit")))
    });
    g.bench_function("resolve_signal by code", |b| {
        b.iter(|| catalogue::resolve_signal(black_box("tractionbattery-stateofcharge")))
    });
    g.bench_function("resolve_signal by alias", |b| {
        b.iter(|| catalogue::resolve_signal(black_box("TractionBattery.StateOfCharge")))
    });
    // Only on a refused call, but a model may send many misspelled codes in a row.
    g.bench_function("closest_signals (unknown code)", |b| {
        b.iter(|| catalogue::closest_signals(black_box("battery.charge.level")))
    });
    let all: Vec<usize> = (0..TOOLS.len()).collect();
    g.bench_function("tools/list JSON (all tools)", |b| {
        b.iter(|| mcp::tools_json(black_box(&all), LocationMode::Exact))
    });
    g.finish();
}

criterion_group! {
    name = micro;
    // Short windows keep the whole run near a minute on 2 cores; these functions take
    // microseconds, so even 2 s gives hundreds of thousands of iterations.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = validation, request_building, shaping, per_call, lookups
}
criterion_main!(micro);
