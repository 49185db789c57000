//! `AppState`: what every call shares for the life of the process: the Smartcar client (one HTTP
//! pool, one token cache), the serving settings and the set of tools this server serves.

use std::sync::Arc;

use crate::catalogue::{TOOLS, ToolSpec, tool_index};
use crate::settings::{ServingSettings, Settings};
use crate::upstream::Executor;

pub struct AppState {
    pub exec: Executor,
    pub serving: ServingSettings,
    /// Indices into `TOOLS`, in catalogue order.
    enabled: Vec<usize>,
    on: Vec<bool>,
}

impl AppState {
    pub fn new(settings: Settings, enabled: &[usize]) -> Result<Self, reqwest::Error> {
        let exec = Executor::new(Arc::new(settings.upstream))?;
        Ok(Self::with_executor(exec, settings.serving, enabled))
    }

    pub fn with_executor(exec: Executor, serving: ServingSettings, enabled: &[usize]) -> Self {
        // Compiled beside the serving thread, so the first tools/list is not kept waiting; a call
        // arriving first simply waits for its own tool's validator.
        let warm = enabled.to_vec();
        std::thread::spawn(move || super::arguments::warm_up(&warm));
        let mut on = vec![false; TOOLS.len()];
        for i in enabled {
            on[*i] = true;
        }
        AppState {
            exec,
            serving,
            enabled: enabled.to_vec(),
            on,
        }
    }

    /// The served tool of this name; `None` for unknown and filtered-out tools alike.
    pub fn lookup(&self, name: &str) -> Option<&'static ToolSpec> {
        tool_index(name).filter(|i| self.on[*i]).map(|i| &TOOLS[i])
    }

    /// The served tools, in catalogue order.
    pub fn tools(&self) -> impl Iterator<Item = &'static ToolSpec> + '_ {
        self.enabled.iter().map(|i| &TOOLS[*i])
    }

    /// Indices into `TOOLS` of the served tools.
    pub fn enabled(&self) -> &[usize] {
        &self.enabled
    }
}
