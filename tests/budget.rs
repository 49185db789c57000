//! The model-visible budget: what each tool costs the model on every request (name, description
//! and input schema as compact JSON), held to 1,200 bytes per tool and 600 on average for the
//! default tool set; `tools --budget`; docs/tools.md's before/after table in bytes and o200k tokens;
//! and the failed-call measurement behind publishing a few signal-code examples instead of an
//! enum of every code.

use serde_json::{Value, json};
use smartcar_mcp::catalogue::{SIGNALS, TOOLS, Toolset, UNMAPPED, tool_index};
use smartcar_mcp::mcp::{self, server::MAX_AVERAGE_BYTES, server::MAX_TOOL_BYTES};
use smartcar_mcp::settings::LocationMode;
use smartcar_mcp::simulator::{ALICE, BOB, EV, ICE, PHEV};
use smartcar_mcp::tool::selection;

use crate::common;
use crate::snapshots::ensure_doc_regions;

/// The tools served when the operator picks none: every toolset on by default.
fn default_set() -> Vec<usize> {
    selection::select(&[], &[], &[], false).expect("the default selection")
}

fn tokens(text: &str) -> usize {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len()
}

/// The model-visible parts of main at 7df0267 (before this budget), taken from that commit's
/// tests/snapshots/tools_list.json: the baseline docs/tools.md compares against.
fn before() -> Vec<(String, String)> {
    let text = include_str!("fixtures/budget-before.json");
    let tools: Vec<Value> = serde_json::from_str(text).expect("the fixture is JSON");
    tools
        .into_iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.to_string()))
        .collect()
}

#[test]
fn every_tool_fits_and_the_default_set_averages_under_the_limit() {
    // The limits the CLI prints are the ones this test holds.
    assert_eq!((MAX_TOOL_BYTES, MAX_AVERAGE_BYTES), (1_200, 600));
    for mode in [LocationMode::Exact, LocationMode::Coarse, LocationMode::Off] {
        for (name, json) in mcp::model_visible(&common::all_tools(), mode) {
            assert!(
                json.len() <= MAX_TOOL_BYTES,
                "`{name}` costs the model {} bytes under --location {}, more than {MAX_TOOL_BYTES}: tighten its description or parameters in tools.yaml",
                json.len(),
                mode.as_str()
            );
        }
    }
    // The default set is every toolset but the two opt-in ones (schedules: Tesla and Volvo only;
    // webhooks): a tool leaving it for another toolset must be a decision, not a way to pass.
    let seen = mcp::model_visible(&default_set(), LocationMode::Exact);
    assert_eq!(
        seen.len(),
        TOOLS.iter().filter(|t| t.toolset.on_by_default()).count()
    );
    assert!(seen.len() >= 17, "the default set shrank to {}", seen.len());
    let opt_in: Vec<&str> = Toolset::ALL
        .iter()
        .filter(|t| !t.on_by_default())
        .map(|t| t.as_str())
        .collect();
    assert_eq!(opt_in, ["schedules", "webhooks"]);
    let total: usize = seen.iter().map(|(_, j)| j.len()).sum();
    let average = total / seen.len();
    assert!(
        average <= MAX_AVERAGE_BYTES,
        "the default tool set averages {average} bytes per tool, more than {MAX_AVERAGE_BYTES}"
    );
}

#[test]
fn the_budget_counts_exactly_what_tools_list_publishes() {
    let all = common::all_tools();
    let listed = mcp::tools_json(&all, LocationMode::Exact);
    let seen = mcp::model_visible(&all, LocationMode::Exact);
    assert_eq!(listed.as_array().unwrap().len(), seen.len());
    for (entry, (name, json)) in listed.as_array().unwrap().iter().zip(&seen) {
        let parsed: Value = serde_json::from_str(json).unwrap();
        let expected = json!({
            "name": entry["name"],
            "description": entry["description"],
            "inputSchema": entry["inputSchema"],
        });
        assert_eq!(parsed, expected, "`{name}`");
        // Compact: no whitespace outside strings, so the figure is what a client sends at least.
        assert_eq!(json.len(), expected.to_string().len());
    }
}

fn run_cli(args: &[&str]) -> String {
    let mut cmd = common::command();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMARTCAR_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.args(args).output().expect("the binary runs");
    assert!(
        out.status.success(),
        "smartcar-mcp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The byte column of `tools --budget` for one tool.
fn printed_bytes(listing: &str, name: &str) -> Option<usize> {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(2))
        .map(|b| b.parse().expect("a byte count"))
}

#[test]
fn tools_budget_prints_each_served_tool_and_the_average() {
    let listing = run_cli(&["tools", "--budget"]);
    let seen = mcp::model_visible(&default_set(), LocationMode::Exact);
    for (name, json) in &seen {
        assert_eq!(printed_bytes(&listing, name), Some(json.len()), "{listing}");
    }
    assert_eq!(printed_bytes(&listing, "list_webhooks"), None, "{listing}");
    let total: usize = seen.iter().map(|(_, j)| j.len()).sum();
    let summary = format!(
        "{} tools: {total} bytes, {} bytes per tool on average",
        seen.len(),
        total / seen.len()
    );
    assert!(listing.contains(&summary), "{listing}");
    assert!(listing.contains("1200 bytes per tool"), "{listing}");

    // The filters and the location setting shape it as they shape tools/list.
    let hooks = run_cli(&["tools", "--budget", "--toolsets", "webhooks"]);
    assert!(printed_bytes(&hooks, "list_webhooks").is_some(), "{hooks}");
    assert_eq!(printed_bytes(&hooks, "get_signal"), None, "{hooks}");
    let off = run_cli(&["--location", "off", "tools", "--budget"]);
    assert!(
        printed_bytes(&off, "get_signal").unwrap() < printed_bytes(&listing, "get_signal").unwrap(),
        "--location off publishes fewer examples:\n{off}"
    );
}

// --------------------------------------------------------------------------- README table

fn budget_table() -> String {
    let before: Vec<(String, String)> = before();
    let now = mcp::model_visible(&common::all_tools(), LocationMode::Exact);
    let default: Vec<&str> = default_set().iter().map(|i| TOOLS[*i].name).collect();
    let mut md = String::from(
        "<!-- Generated by `cargo test --test tests budget::`: the model-visible JSON of each tool (name, description, inputSchema; compact), before = main at 7df0267 (tests/fixtures/budget-before.json). -->\n\
         | Tool | Toolset | Bytes before | Bytes now | o200k tokens before | o200k tokens now |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    #[derive(Default)]
    struct Sum {
        tools: usize,
        bytes: [usize; 2],
        tokens: [usize; 2],
    }
    let (mut def, mut all) = (Sum::default(), Sum::default());
    for (name, json) in &now {
        let old = before
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, j)| j.as_str());
        let old_bytes = old.map(str::len);
        let old_tokens = old.map(tokens);
        let (bytes, toks) = (json.len(), tokens(json));
        let toolset = TOOLS[tool_index(name).unwrap()].toolset.as_str();
        let show = |v: Option<usize>| v.map_or("new".to_string(), |v| v.to_string());
        md.push_str(&format!(
            "| `{name}` | {toolset} | {} | {bytes} | {} | {toks} |\n",
            show(old_bytes),
            show(old_tokens)
        ));
        let add = |s: &mut Sum| {
            s.tools += 1;
            s.bytes[0] += old_bytes.unwrap_or(0);
            s.bytes[1] += bytes;
            s.tokens[0] += old_tokens.unwrap_or(0);
            s.tokens[1] += toks;
        };
        if default.contains(name) {
            add(&mut def);
        }
        add(&mut all);
    }
    for (label, s) in [("Default set", &def), ("All toolsets", &all)] {
        md.push_str(&format!(
            "| **{label}, {} tools** | | {} | {} | {} | {} |\n",
            s.tools, s.bytes[0], s.bytes[1], s.tokens[0], s.tokens[1]
        ));
        md.push_str(&format!(
            "| {label}, per tool | | {} | {} | {} | {} |\n",
            s.bytes[0] / s.tools,
            s.bytes[1] / s.tools,
            s.tokens[0] / s.tools,
            s.tokens[1] / s.tools
        ));
    }
    md
}

#[test]
fn readme_budget_table_is_fresh() {
    ensure_doc_regions("docs/tools.md", &[("budget", &budget_table())]);
}

// --------------------------------------------------------------------------- signal-code schema

/// What a model plausibly sends as `signal_code` and the code(s) it means. Hand-written: everyday
/// names for the values users ask about, and v3 codes with a typo or the wrong separator. The
/// intended codes are this file's judgement, stated so a reader can disagree.
const GUESSES: &[(&str, &[&str])] = &[
    ("battery", &["tractionbattery-stateofcharge"]),
    ("battery level", &["tractionbattery-stateofcharge"]),
    ("battery_level", &["tractionbattery-stateofcharge"]),
    ("state of charge", &["tractionbattery-stateofcharge"]),
    ("soc", &["tractionbattery-stateofcharge"]),
    ("stateofcharge", &["tractionbattery-stateofcharge"]),
    (
        "range",
        &["tractionbattery-range", "internalcombustionengine-range"],
    ),
    ("ev range", &["tractionbattery-range"]),
    ("fuel", &["internalcombustionengine-fuellevel"]),
    ("fuel level", &["internalcombustionengine-fuellevel"]),
    ("odometer", &["odometer-traveleddistance"]),
    ("mileage", &["odometer-traveleddistance"]),
    ("locked", &["closure-islocked"]),
    ("lock status", &["closure-islocked"]),
    ("door lock", &["closure-islocked"]),
    ("is_locked", &["closure-islocked"]),
    ("charging", &["charge-ischarging"]),
    ("is charging", &["charge-ischarging"]),
    ("charging status", &["charge-ischarging"]),
    ("charge limit", &["charge-chargelimits"]),
    ("location", &["location-preciselocation"]),
    ("gps location", &["location-preciselocation"]),
    (
        "tire pressure",
        &["diagnostics-tirepressure", "wheel-tires"],
    ),
    ("vin", &["vehicleidentification-vin"]),
    ("plugged in", &["charge-ischargingcableconnected"]),
    ("battery capacity", &["tractionbattery-nominalcapacity"]),
    (
        "oil life",
        &["internalcombustionengine-oillife", "diagnostics-oillife"],
    ),
];

const TYPOS: &[(&str, &[&str])] = &[
    (
        "tractionbattery_stateofcharge",
        &["tractionbattery-stateofcharge"],
    ),
    (
        "TractionBattery-StateOfCharge",
        &["tractionbattery-stateofcharge"],
    ),
    (
        "tractionbatery-stateofcharge",
        &["tractionbattery-stateofcharge"],
    ),
    ("tractionbattery-soc", &["tractionbattery-stateofcharge"]),
    ("charge-ischargin", &["charge-ischarging"]),
    ("charge-is-charging", &["charge-ischarging"]),
    ("closure-islock", &["closure-islocked"]),
    ("closure-locked", &["closure-islocked"]),
    ("odometer-distance", &["odometer-traveleddistance"]),
    ("location-precise-location", &["location-preciselocation"]),
    (
        "internalcombustionengine-fuel",
        &["internalcombustionengine-fuellevel"],
    ),
];

struct Entry {
    sent: String,
    intended: Vec<String>,
}

/// The corpus, by kind: every v3 code; every dotted code signals.yaml knows (the TypeScript
/// server's README codes: its aliases, then those without a v3 counterpart, whose intended codes
/// are the nearest ones signals.yaml names); the guesses; the typos.
fn corpus() -> Vec<(&'static str, Vec<Entry>)> {
    let own = |list: &[(&str, &[&str])]| -> Vec<Entry> {
        list.iter()
            .map(|(s, i)| Entry {
                sent: s.to_string(),
                intended: i.iter().map(|c| c.to_string()).collect(),
            })
            .collect()
    };
    let codes = SIGNALS
        .iter()
        .map(|s| Entry {
            sent: s.code.into(),
            intended: vec![s.code.into()],
        })
        .collect();
    let aliases = SIGNALS
        .iter()
        .flat_map(|s| {
            s.aliases.iter().map(|a| Entry {
                sent: a.to_string(),
                intended: vec![s.code.into()],
            })
        })
        .collect();
    let unmapped = UNMAPPED
        .iter()
        .map(|u| Entry {
            sent: u.alias.into(),
            intended: u.near.iter().map(|c| c.to_string()).collect(),
        })
        .collect();
    vec![
        ("Smartcar v3 codes, as published", codes),
        ("TypeScript server's dotted codes with a v3 code", aliases),
        ("TypeScript server's dotted codes without one", unmapped),
        ("Everyday names", own(GUESSES)),
        ("v3 codes with a typo or wrong separator", own(TYPOS)),
    ]
}

#[derive(Default, Clone, Copy)]
struct Tally {
    calls: usize,
    /// Variant A: refused by the client's schema check (never sent) or answered with an error.
    a_failed: usize,
    b_failed: usize,
    /// Variant B: a failed call whose answer names the intended code first / at all.
    b_first_right: usize,
    b_among: usize,
    /// Variant B: the retry with the first suggested code read the intended signal.
    b_retry_ok: usize,
    /// A call answered without an error, but for a signal other than the intended one.
    wrong_signal: usize,
}

/// The simulated vehicle (and its user) that has this signal, so a failure is the schema's or the
/// code's and never the car's: tried in turn, not counted.
async fn vehicle_for(shared: &mcp::Shared, code: &str) -> Option<(&'static str, &'static str)> {
    for (v, u) in [(PHEV, ALICE), (EV, ALICE), (ICE, BOB)] {
        let args = json!({ "vehicle_id": v, "user_id": u, "signal_code": code });
        if !common::execute_only(shared, "get_signal", args)
            .await
            .is_error
        {
            return Some((v, u));
        }
    }
    None
}

fn answered_code(r: &smartcar_mcp::tool::ToolResult) -> Option<String> {
    r.structured["code"].as_str().map(str::to_string)
}

#[tokio::test]
async fn examples_and_server_resolution_fail_fewer_calls_than_an_enum_of_every_code() {
    let sim = common::simulator().await;
    let shared = common::shared(common::settings(&sim));
    let spec = smartcar_mcp::catalogue::tool("get_signal").unwrap();
    let published: Value = serde_json::from_str(spec.input_schema).unwrap();
    // Variant A, the schema before 82801d2: signal_code an enum of every code.
    let mut with_enum = published.clone();
    with_enum["properties"]["signal_code"] = json!({
        "type": "string",
        "enum": SIGNALS.iter().map(|s| s.code).collect::<Vec<_>>(),
        "description": published["properties"]["signal_code"]["description"],
    });
    let client_a = jsonschema::validator_for(&with_enum).unwrap();
    let client_b = jsonschema::validator_for(&published).unwrap();

    let mut rows = Vec::new();
    // Codes no simulated vehicle reports: sending them would measure the car, not the schema.
    let mut left_out: Vec<String> = Vec::new();
    for (kind, entries) in corpus() {
        let mut t = Tally::default();
        for e in &entries {
            let Some((vehicle, user)) = vehicle_for(&shared, &e.intended[0]).await else {
                if !left_out.contains(&e.intended[0]) {
                    left_out.push(e.intended[0].clone());
                }
                continue;
            };
            t.calls += 1;
            let args = json!({ "vehicle_id": vehicle, "user_id": user, "signal_code": e.sent });
            let right = |r: &smartcar_mcp::tool::ToolResult| {
                answered_code(r).is_some_and(|c| e.intended.contains(&c))
            };
            // A: a validating client refuses what the enum does not hold; the rest reaches us.
            if client_a.is_valid(&args) {
                let r = common::run(&shared, "get_signal", args.clone()).await;
                if r.is_error {
                    t.a_failed += 1;
                } else if !right(&r) {
                    t.wrong_signal += 1;
                }
            } else {
                t.a_failed += 1;
            }
            // B: the published schema, then the server's aliases and suggestions.
            assert!(client_b.is_valid(&args), "B's schema refused {}", e.sent);
            let r = common::run(&shared, "get_signal", args.clone()).await;
            if !r.is_error {
                if !right(&r) {
                    t.wrong_signal += 1;
                }
                continue;
            }
            t.b_failed += 1;
            let suggested: Vec<String> = r.structured["error"]["suggestions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if suggested.first().is_some_and(|s| e.intended.contains(s)) {
                t.b_first_right += 1;
            }
            if suggested.iter().any(|s| e.intended.contains(s)) {
                t.b_among += 1;
            }
            if let Some(first) = suggested.first() {
                let retry = json!({ "vehicle_id": vehicle, "user_id": user, "signal_code": first });
                let r = common::run(&shared, "get_signal", retry).await;
                if !r.is_error && right(&r) {
                    t.b_retry_ok += 1;
                }
            }
        }
        rows.push((kind, t));
    }

    let mut sum = Tally::default();
    for (_, t) in &rows {
        sum.calls += t.calls;
        sum.a_failed += t.a_failed;
        sum.b_failed += t.b_failed;
        sum.b_first_right += t.b_first_right;
        sum.b_among += t.b_among;
        sum.b_retry_ok += t.b_retry_ok;
        sum.wrong_signal += t.wrong_signal;
    }
    // What could break: a code the server should map refused, a silent wrong answer, or B no
    // better than A.
    assert_eq!(
        rows[0].1.b_failed + rows[0].1.a_failed,
        0,
        "a v3 code failed"
    );
    assert_eq!(rows[1].1.b_failed, 0, "a dotted code was not resolved");
    assert_eq!(sum.wrong_signal, 0, "a call answered another signal");
    assert!(sum.b_failed < sum.a_failed);

    let bytes = |schema: &Value| {
        json!({ "name": spec.name, "description": spec.description, "inputSchema": schema })
            .to_string()
    };
    let (a_seen, b_seen) = (bytes(&with_enum), bytes(&published));
    let mut md = String::from(
        "<!-- Generated by `cargo test --test tests budget::`; the method is described above the table. -->\n\
         | Codes sent | Calls | A (enum): failed | B (examples): failed | B: first suggestion intended | B: intended among suggestions | B: a retry with the first suggestion reads the intended signal |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (kind, t) in rows.iter().chain([("**All**", sum)].iter()) {
        md.push_str(&format!(
            "| {kind} | {} | {} | {} | {} | {} | {} |\n",
            t.calls, t.a_failed, t.b_failed, t.b_first_right, t.b_among, t.b_retry_ok
        ));
    }
    if !left_out.is_empty() {
        md.push_str(&format!(
            "\nLeft out, because no simulated vehicle reports the intended signal: the entries meaning {}.\n",
            left_out
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    md.push_str(&format!(
        "\n`get_signal` costs the model {} bytes ({} o200k tokens) with the enum (A) and {} bytes ({} tokens) with the examples (B). No call under either variant answered a signal other than the intended one.\n",
        a_seen.len(),
        tokens(&a_seen),
        b_seen.len(),
        tokens(&b_seen)
    ));
    ensure_doc_regions("docs/tools.md", &[("signal-code-variants", &md)]);
}
