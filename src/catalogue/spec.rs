//! The catalogue model: one set of types for the generator (build.rs lowers tools.yaml and
//! signals.yaml into them) and the runtime (the generated tables are statics of them).
//!
//! std and serde_json only, so build.rs can compile this file with `#[path]`. Text is `&'static str` in both
//! worlds: the generated statics borrow literals, and the generator, a short-lived build program,
//! leaks what it parsed. Every enum spells its YAML words here and nowhere else.

/// Declares a closed enum with its YAML spelling, `ALL`, `as_str` and `parse`.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word tools.yaml and signals.yaml use.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }

            /// Every word, for "expected one of" messages.
            pub fn words() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

words! {
    /// A group of tools an operator serves or not.
    Toolset {
        Connections = "connections",
        Signals = "signals",
        Commands = "commands",
        /// Charge schedules (Tesla and Volvo only): four tools whose schemas are the largest the
        /// model would read; served only when asked for by name or `all`.
        Schedules = "schedules",
        Management = "management",
        /// Webhook management on the Management API; served only when asked for by name or `all`.
        Webhooks = "webhooks",
    }
}

impl Toolset {
    /// Whether a server started without `--toolsets` serves this toolset.
    pub fn on_by_default(self) -> bool {
        !matches!(self, Toolset::Schedules | Toolset::Webhooks)
    }
}

words! {
    Method { Get = "GET", Post = "POST", Put = "PUT", Patch = "PATCH", Delete = "DELETE" }
}

words! {
    /// Which base URL a tool's path is joined to.
    Api {
        Vehicle = "vehicle",
        Management = "management",
        /// Smartcar's public Compatibility API: no credentials are sent.
        Compatibility = "compatibility",
    }
}

words! {
    Location {
        Path = "path",
        Query = "query",
        Header = "header",
        Body = "body",
        /// Read by the server itself (the `raw` switch), never sent to Smartcar.
        Local = "local",
    }
}

words! {
    ParamType {
        Id = "id",
        String = "string",
        Integer = "integer",
        Number = "number",
        Boolean = "boolean",
        SignalCode = "signal_code",
        /// A 24-hour clock time `HH:MM` (charge schedules' startTime and stopTime).
        Time = "time",
        /// A short free-form name sent as a filter (a make, a powertrain): 1 to 64 letters,
        /// digits, spaces and `. _ & ' + -`.
        Name = "name",
        /// A JSON object sent as it is: its `fields`, or (with `keys`) an object keyed by those
        /// names whose every value has the `fields` (the weekly schedule's `days`).
        Object = "object",
    }
}

words! {
    SignalKind { Boolean = "boolean", Number = "number", String = "string", Object = "object" }
}

words! {
    /// The result shapes the runtime implements (`tool::shape::shape` matches on every one); a tool's
    /// `output:` must name one of them.
    Shape {
        Command = "command",
        Deletion = "deletion",
        Signal = "signal",
        SignalList = "signal_list",
        Connection = "connection",
        ConnectionList = "connection_list",
        Vehicle = "vehicle",
        Application = "application",
        ApplicationList = "application_list",
        SecretList = "secret_list",
        Webhook = "webhook",
        WebhookList = "webhook_list",
        SubscriptionList = "subscription_list",
        Subscription = "subscription",
        Compatibility = "compatibility",
    }
}

words! {
    /// What an argument stands for, where the pipeline or a result shape needs it by meaning
    /// rather than by name: a tool's YAML says it, so renaming an argument is a YAML change.
    Role {
        /// The vehicle's id.
        Vehicle = "vehicle",
        /// The id of the Smartcar user the vehicle is connected through.
        User = "user",
        /// A webhook's id.
        Webhook = "webhook",
        /// A connection's id (not the vehicle's).
        Connection = "connection",
    }
}

words! {
    /// The OAuth scope a call of a tool needs when HTTP serving is a resource server
    /// (`--oauth-issuer`); each tool names one in tools.yaml.
    Scope {
        /// Signals, get_vehicle, the caller's own connections, check_compatibility.
        VehicleRead = "vehicle:read",
        /// Lock, charging, charge limit, navigation, schedules.
        VehicleCommand = "vehicle:command",
        /// Unlocking, alone: the one command that opens a car.
        VehicleUnlock = "vehicle:unlock",
        /// Deleting the caller's own connections and user.
        AccountDelete = "account:delete",
        /// The management and webhooks toolsets, and every user's connections.
        AppAdmin = "app:admin",
    }
}

/// `--verify-commands`: where in the compact `get_signal` result of the tool's
/// `confirm_signal` to look after the command (a JSON pointer), and what must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verify {
    pub at: &'static str,
    pub expect: Expect,
}

/// What the confirming signal must hold after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// This boolean.
    Bool(bool),
    /// The value the call sent in this argument.
    Argument(&'static str),
}

impl ParamType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ParamType::Integer | ParamType::Number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Literal(&'static str),
    /// Index into `ToolSpec::params`.
    Param(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    /// Query key, header name, dotted JSON body path, or (for path parameters) the name itself.
    pub wire: &'static str,
    pub location: Location,
    pub ty: ParamType,
    pub required: bool,
    pub enum_values: &'static [&'static str],
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    /// Published as the schema's `examples`; for a signal code, the few most asked codes stand
    /// in for the whole list (which the server still checks).
    pub examples: &'static [&'static str],
    pub description: &'static str,
    /// What the argument stands for, when something looks it up by meaning.
    pub role: Option<Role>,
    /// For an `object` keyed by name: the names it may have (at least one is given).
    pub keys: &'static [&'static str],
    /// For an `object`: the members of the object (or of each keyed value). Their `wire` is their
    /// name and their `location` the parent's.
    pub fields: &'static [ParamSpec],
}

/// The local parameter a `raw: true` tool gets: the switch to Smartcar's own document.
pub const RAW_PARAM: ParamSpec = ParamSpec {
    name: "raw",
    wire: "raw",
    location: Location::Local,
    ty: ParamType::Boolean,
    required: false,
    enum_values: &[],
    minimum: None,
    maximum: None,
    examples: &[],
    description: "true: Smartcar's JSON:API document, not the compact result.",
    role: None,
    keys: &[],
    fields: &[],
};

/// One tool: what tools/list publishes and how a call becomes an HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// The description's first sentence, for one-line listings.
    pub summary: &'static str,
    pub toolset: Toolset,
    pub method: Method,
    pub api: Api,
    pub path: &'static str,
    pub segments: &'static [Segment],
    pub params: &'static [ParamSpec],
    pub annotations: Annotations,
    /// A human must confirm the call before it is sent.
    pub confirm: bool,
    /// The question that human answers; `{param}` is replaced by the argument.
    pub asks: Option<&'static str>,
    /// Result keys removed before a result reaches the model (compared ignoring case, `_`, `-`).
    pub redact: &'static [&'static str],
    /// The published JSON Schema of the arguments, as JSON text.
    pub input_schema: &'static str,
    pub output: Shape,
    /// The tool takes `raw` (its last parameter) and may answer with Smartcar's own document.
    pub raw: bool,
    /// The published JSON Schema of the results (shape, error, dry run, raw), as JSON text.
    pub output_schema: &'static str,
    /// Sentence a successful change opens with; `{param}` is replaced by the argument.
    pub says: Option<&'static str>,
    /// Signal that confirms a pending command took effect.
    pub confirm_signal: Option<&'static str>,
    /// What that signal reads once the command took effect; `None`: not verifiable.
    pub verify: Option<Verify>,
    /// The OAuth scope a call needs.
    pub scope: Scope,
    /// Location privacy leaves this tool's results as they are (a destination the user chose
    /// is not where the vehicle is).
    pub location_exempt: bool,
    /// A few words that help a client's tool search find this tool (`anthropic/searchHint`).
    pub search_hint: Option<&'static str>,
    /// Clients should never defer loading this tool (`anthropic/alwaysLoad`).
    pub always_load: bool,
}

impl ToolSpec {
    /// The parameter that stands for `role`, if the tool has one.
    pub fn param(&self, role: Role) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.role == Some(role))
    }

    /// The argument that stands for `role` in this call.
    pub fn arg<'a>(
        &self,
        role: Role,
        args: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a serde_json::Value> {
        args.get(self.param(role)?.name)
    }

    /// Whether this tool only reads, so that re-sending it after a 5xx or a timeout is safe.
    pub fn is_read(&self) -> bool {
        self.annotations.read_only
    }

    /// Whether this call asks for Smartcar's own document (`raw: true` on a `raw` tool).
    pub fn wants_raw(&self, args: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.raw
            && args
                .get(RAW_PARAM.name)
                .and_then(serde_json::Value::as_bool)
                == Some(true)
    }

    /// The vehicle a call is about: the id after `/vehicles/` in Smartcar's paths.
    pub fn vehicle<'a>(
        &self,
        args: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a str> {
        match self.segments {
            [Segment::Literal("vehicles"), Segment::Param(i), ..] => {
                args.get(self.params[*i].name)?.as_str()
            }
            _ => None,
        }
    }

    /// The Smartcar user a call acts for: its `sc-user-id` header.
    pub fn user<'a>(
        &self,
        args: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a str> {
        self.params
            .iter()
            .find(|p| p.location == Location::Header && p.wire == "sc-user-id")
            .and_then(|p| args.get(p.name)?.as_str())
    }

    /// The value of the parameter the tool acts on: its first path parameter.
    pub fn target<'a>(
        &self,
        args: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a str> {
        self.segments.iter().find_map(|s| match s {
            Segment::Param(i) => args.get(self.params[*i].name)?.as_str(),
            Segment::Literal(_) => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub code: &'static str,
    /// The code prefix, e.g. `tractionbattery`.
    pub group: &'static str,
    /// Smartcar's PascalCase group name, e.g. `TractionBattery`.
    pub group_title: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: Option<&'static str>,
    pub kind: SignalKind,
    pub aliases: &'static [&'static str],
}

/// An older dotted code with no v3 counterpart, and the codes closest to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub alias: &'static str,
    pub near: &'static [&'static str],
}

/// `{name}` placeholders in a `says` or `asks` template.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + len]);
        rest = &rest[start + len + 1..];
    }
    out
}
