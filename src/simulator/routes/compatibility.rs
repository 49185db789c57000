//! Smartcar's public Compatibility API, `GET /compatible-vehicles`
//! (https://smartcar.com/docs/api-reference/compatible-vehicles): `filter[region]` (US, CA or
//! EUROPE) and `filter[make]` (any case) required, `filter[powertrainType]` optional, paged;
//! `vehicle-model-capability` resources with the signals and commands each model supports.

use axum::response::Response;
use serde_json::{Value, json};

use super::RecordedRequest;
use super::reply::{ApiError, json_response};

/// (make, model, region, powertrain, first year, last year, signal codes, command codes)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    u16,
    &'static [&'static str],
    &'static [&'static str],
);

const MODELS: &[Row] = &[
    (
        "TESLA",
        "Model 3",
        "US",
        "BEV",
        2017,
        2026,
        &[
            "tractionbattery-stateofcharge",
            "charge-ischarging",
            "closure-islocked",
            "location-preciselocation",
        ],
        &[
            "closure-lock",
            "closure-unlock",
            "charge-start",
            "charge-stop",
            "charge-set-limit",
        ],
    ),
    (
        "TESLA",
        "Model Y",
        "EUROPE",
        "BEV",
        2020,
        2026,
        &["tractionbattery-stateofcharge", "charge-ischarging"],
        &["charge-start", "charge-stop"],
    ),
    (
        "TOYOTA",
        "RAV4 Prime",
        "US",
        "PHEV",
        2021,
        2025,
        &[
            "tractionbattery-stateofcharge",
            "internalcombustionengine-fuellevel",
        ],
        &["closure-lock", "closure-unlock"],
    ),
    (
        "FORD",
        "F-150",
        "US",
        "ICE",
        2018,
        2026,
        &[
            "internalcombustionengine-fuellevel",
            "odometer-traveleddistance",
        ],
        &["closure-lock"],
    ),
    (
        "FORD",
        "Mustang Mach-E",
        "CA",
        "BEV",
        2021,
        2026,
        &["tractionbattery-stateofcharge"],
        &["charge-start", "charge-stop", "charge-set-limit"],
    ),
];

fn resource(r: &Row) -> Value {
    let (make, model, region, powertrain, start, end, signals, commands) = *r;
    let caps: Vec<Value> = signals
        .iter()
        .map(|c| ("signal", *c))
        .chain(commands.iter().map(|c| ("command", *c)))
        .map(|(ty, code)| {
            let (group, name) = code.split_once('-').unwrap_or((code, code));
            json!({"type": ty, "name": name, "group": group, "code": code, "capability": code,
                   "permission": format!("read_{group}")})
        })
        .collect();
    json!({"id": format!("{make}-{model}-{start}-{end}-{powertrain}-{region}"),
           "type": "vehicle-model-capability",
           "attributes": {"make": make, "model": model, "region": region,
                          "powertrainType": powertrain,
                          "years": {"start": start, "end": end}, "capabilities": caps}})
}

fn positive(req: &RecordedRequest, key: &str, default: usize) -> Result<usize, ApiError> {
    match req.query_value(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ApiError::validation(
                    "BAD_REQUEST",
                    format!("{key} must be a positive integer (got {raw:?})."),
                )
            }),
    }
}

pub fn route(req: &RecordedRequest) -> Result<Response, ApiError> {
    if req.method != "GET" || req.path.trim_end_matches('/') != "/compatible-vehicles" {
        return Err(ApiError::not_found_path(format!(
            "The requested resource {} {} does not exist.",
            req.method, req.path
        )));
    }
    let region = req.query_value("filter[region]").ok_or_else(|| {
        ApiError::validation(
            "MISSING_PARAMETER",
            "filter[region] is required (US, CA or EUROPE).",
        )
    })?;
    if !matches!(region, "US" | "CA" | "EUROPE") {
        return Err(ApiError::validation(
            "BAD_REQUEST",
            format!("filter[region] must be US, CA or EUROPE (got {region:?})."),
        ));
    }
    let make = req
        .query_value("filter[make]")
        .ok_or_else(|| ApiError::validation("MISSING_PARAMETER", "filter[make] is required."))?
        .to_ascii_uppercase();
    let powertrain = req
        .query_value("filter[powertrainType]")
        .map(str::to_ascii_uppercase);
    let matching: Vec<Value> = MODELS
        .iter()
        .filter(|r| r.0 == make && r.2 == region)
        .filter(|r| powertrain.as_deref().is_none_or(|p| r.3 == p))
        .map(resource)
        .collect();
    let page = positive(req, "page[number]", 1)?;
    let size = positive(req, "page[size]", 10)?;
    let total = matching.len();
    let start = (page - 1).saturating_mul(size).min(total);
    let end = start.saturating_add(size).min(total);
    Ok(json_response(
        200,
        &json!({"data": matching[start..end],
                "meta": {"page": page, "pageSize": size, "totalCount": total},
                "links": {"self": "/compatible-vehicles"}}),
    ))
}
