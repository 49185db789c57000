//! MCP prompts (`fleet_overview`, `vehicle_health`, `charge_plan`) and `completion/complete` of
//! their arguments: vehicle and user ids from the connections this server has seen, signal codes
//! from the catalogue.

use rmcp::ErrorData;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptResult, ListPromptsResult,
    Prompt, PromptArgument, PromptMessage, Role,
};
use serde_json::{Map, Value};

use crate::catalogue::{SIGNALS, resolve_signal};
use crate::settings::LocationMode;
use crate::tool::AppState;

struct Arg {
    name: &'static str,
    description: &'static str,
    required: bool,
}

struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    args: &'static [Arg],
}

const VEHICLE: Arg = Arg {
    name: "vehicle_id",
    description: "The vehicle id (from list_connections).",
    required: true,
};
const USER: Arg = Arg {
    name: "user_id",
    description: "The id of the user who connected the vehicle; found with list_connections when left out.",
    required: false,
};

const PROMPTS: &[Spec] = &[
    Spec {
        name: "fleet_overview",
        title: "Fleet overview",
        description: "Every connected vehicle at a glance: battery or fuel, range, lock state and location.",
        args: &[],
    },
    Spec {
        name: "vehicle_health",
        title: "Vehicle health",
        description: "One vehicle's diagnostics and faults, each with what to do about it.",
        args: &[
            VEHICLE,
            USER,
            Arg {
                name: "signal_code",
                description: "A signal to look at closely as well, e.g. diagnostics-tirepressure.",
                required: false,
            },
        ],
    },
    Spec {
        name: "charge_plan",
        title: "Charge plan",
        description: "A plan to reach a target charge by a given time, using the charge limit and schedules.",
        args: &[
            VEHICLE,
            USER,
            Arg {
                name: "target_percent",
                description: "The state of charge to reach, in percent (50 to 100).",
                required: true,
            },
            Arg {
                name: "by",
                description: "When the charge is needed, e.g. 07:30 tomorrow or an ISO-8601 time.",
                required: true,
            },
        ],
    },
];

pub fn list() -> ListPromptsResult {
    let prompts = PROMPTS
        .iter()
        .map(|p| {
            let args = p
                .args
                .iter()
                .map(|a| {
                    PromptArgument::new(a.name)
                        .with_description(a.description)
                        .with_required(a.required)
                })
                .collect();
            Prompt::new(p.name, Some(p.description), Some(args)).with_title(p.title)
        })
        .collect();
    ListPromptsResult::with_all_items(prompts)
}

fn text(args: &Map<String, Value>, name: &str) -> Option<String> {
    match args.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn location_line(mode: LocationMode) -> &'static str {
    match mode {
        LocationMode::Exact => "its location (location-preciselocation: latitude and longitude)",
        LocationMode::Coarse => {
            "its approximate location (location-preciselocation; this server rounds latitude and longitude to 0.01 degree, about 1 km, so say it is approximate)"
        }
        LocationMode::Off => {
            "no location: this server has location turned off (--location off), so do not ask for location signals and say location is not shared"
        }
    }
}

/// The prompt's text, or an `invalid_params` error naming the argument that is missing or wrong.
pub fn get(
    app: &AppState,
    name: &str,
    args: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, ErrorData> {
    let empty = Map::new();
    let args = args.unwrap_or(&empty);
    let Some(spec) = PROMPTS.iter().find(|p| p.name == name) else {
        let known: Vec<_> = PROMPTS.iter().map(|p| p.name).collect();
        return Err(ErrorData::invalid_params(
            format!(
                "no prompt `{}` (this server has {})",
                crate::text::clip(name),
                known.join(", ")
            ),
            None,
        ));
    };
    for a in spec.args.iter().filter(|a| a.required) {
        if text(args, a.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!(
                    "prompt `{name}` needs the argument `{}`: {}",
                    a.name, a.description
                ),
                None,
            ));
        }
    }
    let vehicle = text(args, "vehicle_id").unwrap_or_default();
    let user = match text(args, "user_id").or_else(|| app.seen.user_of(&vehicle)) {
        Some(u) => format!("user {u}"),
        None => "the user list_connections names for it".to_string(),
    };
    let body = match spec.name {
        "fleet_overview" => format!(
            "Give me an overview of every connected vehicle.\n\
             1. Call list_connections (all pages) to find each vehicle_id and user_id.\n\
             2. For each vehicle call get_signals once (not one get_signal per value).\n\
             3. Report one line per vehicle: make, model and year; battery \
             (tractionbattery-stateofcharge, percent) for electric and plug-in vehicles or fuel \
             (internalcombustionengine-fuellevel) for combustion ones; range \
             (tractionbattery-range or internalcombustionengine-range, with its unit); lock state \
             (closure-islocked); and {}.\n\
             4. Say when a value is missing or old (oem_updated_at), and flag low charge or fuel \
             and unlocked vehicles.",
            location_line(app.serving.location)
        ),
        "vehicle_health" => {
            let focus = match text(args, "signal_code") {
                Some(code) => {
                    let code = match resolve_signal(&code) {
                        Some(s) => s.code.to_string(),
                        None => {
                            return Err(ErrorData::invalid_params(
                                format!(
                                    "prompt `vehicle_health`: `signal_code` \"{}\" {}",
                                    crate::text::clip(&code),
                                    crate::catalogue::not_a_signal(&code).0
                                ),
                                None,
                            ));
                        }
                    };
                    format!(" Also read {code} with get_signal and explain it.")
                }
                None => String::new(),
            };
            format!(
                "Check the health of vehicle {vehicle} ({user}).\n\
                 1. Call get_signals for it and look at the diagnostics group (diagnostics-*: \
                 warning lights, tire pressures, oil life, service and system status), the \
                 low-voltage battery (lowvoltagebattery-*) and the traction battery where it has one.\n\
                 2. List every fault or warning first, most urgent first, each with what it means \
                 and what to do about it (drive on, book service soon, stop driving), then what is \
                 fine.\n\
                 3. Name the signals that came back with errors or not at all, rather than \
                 guessing their values.{focus}"
            )
        }
        "charge_plan" => {
            let target = text(args, "target_percent").unwrap_or_default();
            let Some(target) = target
                .parse::<f64>()
                .ok()
                .filter(|t| (50.0..=100.0).contains(t))
            else {
                return Err(ErrorData::invalid_params(
                    format!(
                        "prompt `charge_plan`: `target_percent` must be a number from 50 to 100 (got \"{}\")",
                        crate::text::clip(&target)
                    ),
                    None,
                ));
            };
            let by = text(args, "by").unwrap_or_default();
            // The schedule tools are opt-in (toolset `schedules`): name them only when served.
            let schedule = if app.lookup("set_daily_charge_schedule").is_some() {
                "propose set_daily_charge_schedule"
            } else {
                "say so (this server does not serve the schedule tools: toolset `schedules`)"
            };
            format!(
                "Plan charging vehicle {vehicle} ({user}) to {target}% by {by}.\n\
                 1. Read tractionbattery-stateofcharge, charge-ischargingcableconnected, \
                 charge-ischarging, charge-chargerate or charge-timetocomplete, \
                 charge-chargelimits and charge-chargetimers with get_signals.\n\
                 2. If the charge limit is below {target}%, propose set_charge_limit to {target}.\n\
                 3. Estimate when charging must start to finish by {by}; if a charge schedule \
                 (charge-chargetimers) would miss it, {schedule}, and if \
                 charging must start now, propose start_charge.\n\
                 4. Say if the cable is not plugged in. Ask me before sending any command, and \
                 after a command read its signal to confirm it took effect."
            )
        }
        _ => unreachable!("every prompt has its text"),
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, body)])
            .with_description(spec.description),
    )
}

/// Up to 100 values of `candidates` starting with (then containing) what was typed.
fn matching(candidates: impl Iterator<Item = String>, typed: &str) -> CompletionInfo {
    let typed = typed.trim().to_ascii_lowercase();
    let all: Vec<String> = candidates.collect();
    let mut values: Vec<String> = all
        .iter()
        .filter(|c| c.to_ascii_lowercase().starts_with(&typed))
        .cloned()
        .collect();
    values.extend(
        all.iter()
            .filter(|c| {
                let c = c.to_ascii_lowercase();
                !c.starts_with(&typed) && c.contains(&typed)
            })
            .cloned(),
    );
    let total = values.len();
    values.truncate(CompletionInfo::MAX_VALUES);
    let more = total > values.len();
    CompletionInfo::with_pagination(values, Some(total as u32), more).unwrap_or_default()
}

/// The signal codes this server offers: under `--location off` the location codes are refused,
/// so they are never suggested.
fn offered_codes(app: &AppState) -> impl Iterator<Item = String> + '_ {
    SIGNALS
        .iter()
        .filter(|s| app.serving.location != LocationMode::Off || s.group != "location")
        .map(|s| s.code.to_string())
}

pub fn complete(
    app: &AppState,
    request: &CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let Some(prompt) = request.r#ref.as_prompt_name() else {
        // Resource templates: the signal template takes codes too.
        let info = match request.argument.name.as_str() {
            "code" => matching(offered_codes(app), &request.argument.value),
            "vehicle_id" => matching(app.seen.vehicles().into_iter(), &request.argument.value),
            _ => CompletionInfo::default(),
        };
        return Ok(CompleteResult::new(info));
    };
    let Some(spec) = PROMPTS.iter().find(|p| p.name == prompt) else {
        return Err(ErrorData::invalid_params(
            format!("no prompt `{}`", crate::text::clip(prompt)),
            None,
        ));
    };
    let arg = request.argument.name.as_str();
    if !spec.args.iter().any(|a| a.name == arg) {
        return Err(ErrorData::invalid_params(
            format!(
                "prompt `{prompt}` has no argument `{}`",
                crate::text::clip(arg)
            ),
            None,
        ));
    }
    let typed = &request.argument.value;
    let info = match arg {
        "vehicle_id" => matching(app.seen.vehicles().into_iter(), typed),
        "user_id" => {
            let vehicle = request
                .context
                .as_ref()
                .and_then(|c| c.arguments.as_ref())
                .and_then(|a| a.get("vehicle_id"))
                .cloned();
            let users = match vehicle.and_then(|v| app.seen.user_of(&v)) {
                Some(u) => vec![u],
                None => app.seen.users(),
            };
            matching(users.into_iter(), typed)
        }
        "signal_code" => matching(offered_codes(app), typed),
        "target_percent" => matching(["80", "90", "100"].map(String::from).into_iter(), typed),
        _ => CompletionInfo::default(),
    };
    Ok(CompleteResult::new(info))
}
