//! Which tools an operator serves: toolsets, extra tools, exclusions and read-only mode.

use crate::catalogue::{TOOLS, Toolset, tool_index};

/// An operator named a toolset or tool that does not exist; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SelectionError(String);

/// Indices into `TOOLS` of the tools to serve. Read-only and exclusions win over everything;
/// `tools` adds to `toolsets`, and alone selects only those tools; nothing given means every
/// toolset that is on by default (all but `schedules` and `webhooks`); `all` means every toolset.
pub fn select(
    toolsets: &[String],
    tools: &[String],
    exclude: &[String],
    read_only: bool,
) -> Result<Vec<usize>, SelectionError> {
    let clean = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let (toolsets, tools, exclude) = (clean(toolsets), clean(tools), clean(exclude));
    let valid_sets = || {
        Toolset::ALL
            .iter()
            .map(|t| t.as_str())
            .chain(["all"])
            .collect::<Vec<_>>()
            .join(", ")
    };
    let valid_tools = || TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ");
    let mut sets = Vec::new();
    for s in &toolsets {
        if s == "all" {
            sets.extend(Toolset::ALL);
        } else if let Some(t) = Toolset::ALL.iter().find(|t| t.as_str() == s) {
            sets.push(*t);
        } else {
            return Err(SelectionError(format!(
                "unknown toolset `{s}` (valid toolsets: {})",
                valid_sets()
            )));
        }
    }
    for name in tools.iter().chain(&exclude) {
        if tool_index(name).is_none() {
            return Err(SelectionError(format!(
                "unknown tool `{name}` (valid tools: {})",
                valid_tools()
            )));
        }
    }
    let everything = toolsets.is_empty() && tools.is_empty();
    Ok(TOOLS
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            (everything && t.toolset.on_by_default())
                || sets.contains(&t.toolset)
                || tools.iter().any(|n| n == t.name)
        })
        .filter(|(_, t)| !exclude.iter().any(|n| n == t.name))
        .filter(|(_, t)| !read_only || t.annotations.read_only)
        .map(|(i, _)| i)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[usize]) -> Vec<&'static str> {
        v.iter().map(|i| TOOLS[*i].name).collect()
    }
    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_is_every_tool_but_the_schedules_and_webhooks_and_all_is_everything() {
        let default = names(&select(&[], &[], &[], false).unwrap());
        let off: Vec<&str> = TOOLS
            .iter()
            .filter(|t| matches!(t.toolset, Toolset::Schedules | Toolset::Webhooks))
            .map(|t| t.name)
            .collect();
        assert!(off.contains(&"list_webhooks") && off.contains(&"unsubscribe_vehicle"));
        assert!(
            off.contains(&"set_weekly_charge_schedule") && off.contains(&"delete_charge_schedule")
        );
        assert_eq!(default.len(), TOOLS.len() - off.len());
        assert!(off.iter().all(|n| !default.contains(n)));
        let all = select(&s(&["all"]), &[], &[], false).unwrap();
        assert_eq!(all.len(), TOOLS.len());
        let hooks = names(&select(&s(&["schedules", "webhooks"]), &[], &[], false).unwrap());
        assert_eq!(hooks, off);
    }

    #[test]
    fn tools_add_to_toolsets_and_alone_select_only_themselves() {
        let v = select(&s(&["management"]), &s(&["get_signal"]), &[], false).unwrap();
        assert!(names(&v).contains(&"get_signal"));
        assert!(names(&v).contains(&"list_applications"));
        assert!(!names(&v).contains(&"get_signals"));
        let v = select(&[], &s(&["lock_vehicle"]), &[], false).unwrap();
        assert_eq!(names(&v), vec!["lock_vehicle"]);
    }

    #[test]
    fn read_only_and_exclude_win() {
        let v = select(
            &s(&["all"]),
            &s(&["unlock_vehicle"]),
            &s(&["get_signal"]),
            true,
        )
        .unwrap();
        assert!(!names(&v).contains(&"unlock_vehicle"));
        assert!(!names(&v).contains(&"get_signal"));
        assert!(v.iter().all(|i| TOOLS[*i].annotations.read_only));
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones() {
        let e = select(&s(&["cars"]), &[], &[], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`cars`")
                && e.contains(
                    "connections, signals, commands, schedules, management, webhooks, all"
                ),
            "{e}"
        );
        let e = select(&[], &s(&["open_trunk"]), &[], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`open_trunk`") && e.contains("get_signal"),
            "{e}"
        );
    }
}
