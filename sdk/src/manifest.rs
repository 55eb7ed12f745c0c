//! Builders for the manifest a plugin returns from `describe`.

use crate::bindings::exports::triage::probe::probe as wit;
use schemars::JsonSchema;

/// What a plugin is and what each of its actions may do.
#[derive(Debug, Clone)]
pub struct Manifest {
    name: String,
    version: String,
    description: String,
    actions: Vec<Action>,
}

impl Manifest {
    /// A manifest with no actions yet.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            actions: Vec::new(),
        }
    }

    /// Adds an action.
    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// The WIT record as JSON: `{"name", "version", "sdk_version", "description",
    /// "actions": [{"name", "description", "params_schema", "output_schema",
    /// "capabilities": [{"exec": [...]}, {"http": "..."}, ...]}]}`.
    pub(crate) fn to_json(&self) -> String {
        let actions: Vec<serde_json::Value> = self
            .actions
            .iter()
            .map(|a| {
                let capabilities: Vec<serde_json::Value> = a
                    .capabilities
                    .iter()
                    .map(|c| match c {
                        wit::Capability::Exec(argv) => serde_json::json!({ "exec": argv }),
                        wit::Capability::Http(p) => serde_json::json!({ "http": p }),
                        wit::Capability::ReadFile(p) => serde_json::json!({ "read_file": p }),
                        wit::Capability::Resolve(p) => serde_json::json!({ "resolve": p }),
                        wit::Capability::Connect(p) => serde_json::json!({ "connect": p }),
                    })
                    .collect();
                serde_json::json!({
                    "name": a.name,
                    "description": a.description,
                    "params_schema": a.params_schema,
                    "output_schema": a.output_schema,
                    "capabilities": capabilities,
                })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "version": self.version,
            "sdk_version": crate::SDK_VERSION,
            "description": self.description,
            "actions": actions,
        })
        .to_string()
    }

    pub(crate) fn into_wit(self) -> wit::Manifest {
        wit::Manifest {
            name: self.name,
            version: self.version,
            sdk_version: crate::SDK_VERSION.into(),
            description: self.description,
            actions: self.actions.into_iter().map(Action::into_wit).collect(),
        }
    }
}

/// One action: its params and output types (as JSON Schemas) and the capabilities it may use.
///
/// Capability patterns may hold `{param}`, replaced by the call's value of that parameter,
/// `*` for one argument (or one path or URL segment) and `**` for the rest.
#[derive(Debug, Clone)]
pub struct Action {
    name: String,
    description: String,
    params_schema: String,
    output_schema: String,
    capabilities: Vec<wit::Capability>,
}

impl Action {
    /// An action whose params deserialise into `P` and whose facts serialise from `O`.
    pub fn new<P: JsonSchema, O: JsonSchema>(name: &str, description: &str) -> Self {
        Action {
            name: name.into(),
            description: description.into(),
            params_schema: schema_of::<P>(),
            output_schema: schema_of::<O>(),
            capabilities: Vec::new(),
        }
    }

    /// May run a command matching this argv pattern.
    pub fn exec(mut self, argv: &[&str]) -> Self {
        self.capabilities.push(wit::Capability::Exec(
            argv.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }

    /// May send GET and HEAD requests to URLs matching this pattern; name other methods
    /// before the URL, `"POST {admin_url}/healthcheck/ok"` (the operator's policy must name
    /// them too).
    pub fn http(mut self, url: &str) -> Self {
        self.capabilities.push(wit::Capability::Http(url.into()));
        self
    }

    /// May read files matching this path pattern.
    pub fn read_file(mut self, path: &str) -> Self {
        self.capabilities
            .push(wit::Capability::ReadFile(path.into()));
        self
    }

    /// May resolve host names matching this pattern.
    pub fn resolve(mut self, host: &str) -> Self {
        self.capabilities
            .push(wit::Capability::Resolve(host.into()));
        self
    }

    /// May open TCP connections to "host:port" matching this pattern.
    pub fn connect(mut self, host_port: &str) -> Self {
        self.capabilities
            .push(wit::Capability::Connect(host_port.into()));
        self
    }

    fn into_wit(self) -> wit::Action {
        wit::Action {
            name: self.name,
            description: self.description,
            params_schema: self.params_schema,
            output_schema: self.output_schema,
            capabilities: self.capabilities,
        }
    }
}

/// A self-contained JSON Schema (subschemas inlined) so the host can check params and
/// read defaults without resolving references.
fn schema_of<T: JsonSchema>() -> String {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    serde_json::to_string(&schema).expect("a JSON Schema always serialises")
}
