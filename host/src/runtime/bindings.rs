//! Host-side bindings for the `triage:probe` WIT package (all generated code lives here).

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use exports::triage::probe::probe as guest;
pub use triage::probe::host as wit_host;
