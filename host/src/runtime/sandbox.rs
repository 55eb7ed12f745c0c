//! The state of one plugin call, and the host side of the WIT imports.
//!
//! One `Store<CallState>` per call: its own memory cap, CPU budget (counted in epoch
//! ticks), WASI context with no preopens, no environment and no sockets, and the grants
//! of the action being run. Every import checks the grants before doing anything.

use super::bindings::wit_host;
use super::limits::{CapabilityLog, MemoryBudget};
use crate::capability::PluginLog;
use crate::capability::{self, Call, Grants};
use crate::target::Target;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// WASI resource handles a call may hold at once (wasmtime's default is a million).
const MAX_RESOURCES: usize = 10_000;

pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: MemoryBudget,
    pub(crate) grants: Grants,
    pub(crate) target: Arc<dyn Target>,
    /// How long a single capability call may take (the call's remaining wall time is
    /// enforced around the whole call as well).
    pub(crate) capability_timeout: Duration,
    pub(crate) journal: CapabilityLog,
    pub(crate) logs: Vec<PluginLog>,
    pub(super) cpu_ticks: u64,
    pub(super) cpu_tick_budget: u64,
    pub(super) cpu_exhausted: bool,
}

impl CallState {
    pub fn new(
        grants: Grants,
        target: Arc<dyn Target>,
        memory_bytes: usize,
        cpu_tick_budget: u64,
        capability_timeout: Duration,
    ) -> Self {
        // A plugin computes over what the host hands it: no files, no environment, no
        // network of its own. Clocks and randomness are harmless and kept.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        // WASI resources (streams, pollables) live in host memory: a plugin needs a handful.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        CallState {
            wasi,
            table,
            limits: MemoryBudget::new(memory_bytes),
            grants,
            target,
            capability_timeout,
            journal: CapabilityLog::default(),
            logs: Vec::new(),
            cpu_ticks: 0,
            cpu_tick_budget,
            cpu_exhausted: false,
        }
    }

    /// The capability context lent to the host functions for one import call.
    fn call(&mut self) -> Call<'_> {
        Call {
            grants: &self.grants,
            target: &*self.target,
            timeout: self.capability_timeout,
            journal: &mut self.journal,
            logs: &mut self.logs,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type HostResult<T> = wasmtime::Result<Result<T, wit_host::CapabilityError>>;

/// Each WIT import is one capability function (`capability/<name>.rs`); the conversions
/// between WIT and host types are in `bindings.rs`.
impl wit_host::Host for CallState {
    async fn exec(&mut self, argv: Vec<String>) -> HostResult<wit_host::ExecOutput> {
        let result = capability::exec::exec(&mut self.call(), argv).await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn http(&mut self, request: wit_host::HttpRequest) -> HostResult<wit_host::HttpResponse> {
        let result = capability::http::http(&mut self.call(), request.into()).await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn read_file(&mut self, path: String, max_bytes: u64) -> HostResult<Vec<u8>> {
        let result = capability::read_file::read_file(&mut self.call(), path, max_bytes).await;
        Ok(result.map_err(Into::into))
    }

    async fn read_file_tail(
        &mut self,
        path: String,
        max_bytes: u64,
    ) -> HostResult<wit_host::FileTail> {
        let result = capability::read_file::read_file_tail(&mut self.call(), path, max_bytes).await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn resolve(&mut self, host: String) -> HostResult<Vec<String>> {
        let result = capability::resolve::resolve(&mut self.call(), host).await;
        Ok(result.map_err(Into::into))
    }

    async fn connect(&mut self, host: String, port: u16, timeout_ms: u32) -> HostResult<u32> {
        let result = capability::connect::connect(&mut self.call(), host, port, timeout_ms).await;
        Ok(result.map_err(Into::into))
    }

    async fn log(&mut self, level: wit_host::LogLevel, message: String) -> wasmtime::Result<()> {
        capability::log::log(&mut self.call(), level.into(), message);
        Ok(())
    }

    async fn now(&mut self) -> wasmtime::Result<i64> {
        Ok(self.target.now())
    }
}
