//! Each caller reaches only its own cars: which scopes a tool needs, and the pipeline's check of
//! a call's ids against the caller's Smartcar users (from its access token) before anything is
//! sent. Ownership is read from `/connections` filtered to one user at a time, with the
//! application's credentials, and kept a few minutes per user (bounded); a delete or a webhook
//! event drops it.
//!
//! Callers without a principal (stdio, the static bearer token, the `call` command) are the
//! operator and pass untouched. A refusal reads the same whether or not the id exists.

use serde_json::{Map, Value, json};

use super::error::ToolError;
use super::owners::Owned;
use super::state::AppState;
use super::usage::Counts;
use crate::catalogue::{Role, ToolSpec};
use crate::oauth::{Principal, Scopes};

/// Pages of one user's connections read at most (100 a page): a bound on what one check costs.
const MAX_PAGES: u64 = 10;

/// The scopes a call of this tool needs: its `scope` in tools.yaml.
pub fn required(spec: &ToolSpec) -> Scopes {
    Scopes::of(&[spec.scope])
}

/// Whether `tools/list` shows this tool to this caller (everyone sees everything without OAuth).
pub fn visible(spec: &ToolSpec, principal: Option<&Principal>) -> bool {
    principal.is_none_or(|p| p.scopes.contains(required(spec)))
}

/// The caller's connections, user by user: from the cache, else from Smartcar.
async fn connections_of(state: &AppState, user: &str) -> Result<Vec<Owned>, ToolError> {
    if let Some(owned) = state.owners.get(user) {
        return Ok(owned);
    }
    let spec = crate::catalogue::tool("list_connections").expect("list_connections is catalogued");
    // Its arguments by role and by Smartcar's paging keys, so their names are YAML's to change.
    let by_wire = |wire: &str| spec.params.iter().find(|p| p.wire == wire).map(|p| p.name);
    let (Some(user_param), Some(size), Some(number)) = (
        spec.param(Role::User).map(|p| p.name),
        by_wire("page[size]"),
        by_wire("page[number]"),
    ) else {
        return Err(forbidden("list_connections cannot be filtered by user"));
    };
    let mut owned = Vec::new();
    for page in 1..=MAX_PAGES {
        let mut args = Map::new();
        args.insert(user_param.into(), json!(user));
        args.insert(size.into(), json!(100));
        args.insert(number.into(), json!(page));
        let req = state.exec.request(spec, &args);
        let outcome = state.exec.send(spec, &req).await;
        let counts = Counts {
            upstream_calls: outcome.attempts.into(),
            ..Counts::default()
        };
        state
            .usage
            .record(None, outcome.result.is_ok(), spec.name, counts)
            .await;
        let body = match outcome.result {
            Ok(ok) => ok.body.unwrap_or(Value::Null),
            Err(f) => return Err(ToolError::from(f)),
        };
        let rows = body["data"].as_array().cloned().unwrap_or_default();
        for row in &rows {
            let id = |compact: &str, raw: &str| {
                row.get(compact)
                    .or_else(|| row.pointer(raw))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let owner = id("user_id", "/relationships/user/data/id");
            // Smartcar was asked for this user only; a row naming another is not trusted.
            if owner.as_deref().is_some_and(|o| o != user) {
                continue;
            }
            if let (Some(connection), Some(vehicle)) = (
                row.get("id").and_then(Value::as_str).map(str::to_string),
                id("vehicle_id", "/relationships/vehicle/data/id"),
            ) {
                owned.push(Owned {
                    connection,
                    vehicle,
                });
            }
        }
        let total = body["meta"]["totalCount"].as_u64().unwrap_or(0);
        if rows.len() < 100 || page * 100 >= total {
            break;
        }
    }
    state.owners.put(user, owned.clone());
    Ok(owned)
}

/// The user (of the caller's) whose connection holds this vehicle, or connection id.
async fn owner_of(
    state: &AppState,
    principal: &Principal,
    matches: impl Fn(&Owned) -> bool,
) -> Result<Option<String>, ToolError> {
    for user in &principal.users {
        if connections_of(state, user).await?.iter().any(&matches) {
            return Ok(Some(user.clone()));
        }
    }
    Ok(None)
}

/// Whether this caller may see this vehicle (everyone may without OAuth; `app:admin` always).
pub async fn owns_vehicle(state: &AppState, principal: Option<&Principal>, vehicle: &str) -> bool {
    match principal {
        None => true,
        Some(p) if p.is_admin() => true,
        Some(p) => matches!(
            owner_of(state, p, |o| o.vehicle == vehicle).await,
            Ok(Some(_))
        ),
    }
}

/// The vehicles a caller reaches, for lists shown to it; `None` means every vehicle.
pub async fn vehicles_of(state: &AppState, principal: Option<&Principal>) -> Option<Vec<String>> {
    let p = principal.filter(|p| !p.is_admin())?;
    let mut out = Vec::new();
    for user in &p.users {
        if let Ok(owned) = connections_of(state, user).await {
            out.extend(owned.into_iter().map(|o| o.vehicle));
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// The arguments with `user_id` filled in, when the caller has exactly one Smartcar user and
/// left it out; `None` when nothing is to be filled (the arguments stand as sent). Runs before
/// validation, so a tool that requires `user_id` accepts the call without it.
pub fn fill_in(
    spec: &ToolSpec,
    raw: Option<&Map<String, Value>>,
    principal: Option<&Principal>,
) -> Option<Map<String, Value>> {
    let p = principal.filter(|p| !p.is_admin() && p.users.len() == 1)?;
    let user = spec.param(Role::User)?;
    if raw.is_some_and(|r| r.contains_key(user.name)) {
        return None;
    }
    let mut args = raw.cloned().unwrap_or_default();
    args.insert(user.name.into(), json!(p.users[0]));
    Some(args)
}

fn forbidden(detail: impl Into<String>) -> ToolError {
    ToolError::Forbidden {
        detail: detail.into(),
    }
}

/// The pipeline's check: the caller's scopes cover the tool, and every id it names is the
/// caller's. Fills in `user_id` where the caller's own is implied. Makes no Smartcar call beyond
/// the caller's own `/connections`.
pub async fn admit(
    state: &AppState,
    spec: &'static ToolSpec,
    args: &mut Map<String, Value>,
    principal: Option<&Principal>,
) -> Result<(), ToolError> {
    let Some(p) = principal else {
        return Ok(());
    };
    let needs = required(spec);
    if !p.scopes.contains(needs) {
        return Err(forbidden(format!(
            "your access token lacks the scope {}; ask your authorization server for it",
            needs.names()
        )));
    }
    if p.is_admin() {
        return Ok(());
    }
    // Only arguments that stand for a user, vehicle or connection reach anyone's data.
    if !spec.params.iter().any(|x| x.role.is_some()) {
        return Ok(());
    }
    if p.users.is_empty() {
        return Err(forbidden(
            "your access token names no Smartcar user (in its user claim, or in the operator's tenants table), so no vehicle can be reached; connect a vehicle through Smartcar Connect and sign in again",
        ));
    }
    let mine = |u: &str| p.users.iter().any(|x| x == u);
    let text = |role, args: &Map<String, Value>| {
        spec.arg(role, args)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let (Some(param), Some(id)) = (spec.param(Role::Connection), text(Role::Connection, args))
        && owner_of(state, p, |o| o.connection == id).await?.is_none()
    {
        return Err(forbidden(format!(
            "{} `{}` is not one of your connections",
            param.name,
            crate::text::clip(&id)
        )));
    }
    let user_param = spec.param(Role::User);
    let user = text(Role::User, args);
    if let (Some(param), Some(u)) = (user_param, &user)
        && !mine(u)
    {
        return Err(forbidden(format!(
            "{} `{}` is not one of your Smartcar users",
            param.name,
            crate::text::clip(u)
        )));
    }
    // The vehicle a call acts on, or one it filters by.
    let vehicle = spec
        .vehicle(args)
        .map(str::to_string)
        .or_else(|| text(Role::Vehicle, args));
    let owner = match &vehicle {
        Some(vehicle) => {
            let owner = match &user {
                // Named: that user must hold the vehicle.
                Some(u) => connections_of(state, u)
                    .await?
                    .iter()
                    .any(|o| &o.vehicle == vehicle)
                    .then(|| u.clone()),
                None => owner_of(state, p, |o| &o.vehicle == vehicle).await?,
            };
            let Some(owner) = owner else {
                let name = spec.param(Role::Vehicle).map_or("vehicle_id", |x| x.name);
                return Err(forbidden(format!(
                    "{name} `{}` is not one of your vehicles",
                    crate::text::clip(vehicle)
                )));
            };
            Some(owner)
        }
        None if p.users.len() == 1 => Some(p.users[0].clone()),
        None => None,
    };
    if let (Some(param), None) = (user_param, &user) {
        match owner {
            Some(owner) => {
                args.insert(param.name.into(), json!(owner));
            }
            // Left out, a user filter would reach every user's connections.
            None if spec.params.iter().all(|x| x.role != Some(Role::Connection)) => {
                return Err(forbidden(format!(
                    "your access token names several Smartcar users; give {}, one of {}",
                    param.name,
                    p.users.join(", ")
                )));
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::TOOLS;

    #[test]
    fn every_tool_needs_exactly_one_scope_and_unlock_stands_alone() {
        for spec in &TOOLS {
            let r = required(spec);
            assert_eq!(r.names().split(' ').count(), 1, "{}", spec.name);
        }
        let get = |n| required(crate::catalogue::tool(n).unwrap()).names();
        assert_eq!(get("unlock_vehicle"), "vehicle:unlock");
        assert_eq!(get("lock_vehicle"), "vehicle:command");
        assert_eq!(get("get_vehicle"), "vehicle:read");
        assert_eq!(get("delete_user"), "account:delete");
        assert_eq!(get("list_webhooks"), "app:admin");
    }
}
