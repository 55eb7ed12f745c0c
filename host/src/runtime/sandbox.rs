//! The state of one plugin call, and the host side of the WIT imports.
//!
//! One `Store<CallState>` per call: its own memory cap, CPU budget (counted in epoch
//! ticks), WASI context with no preopens, no environment and no sockets, and the grants
//! of the action being run. Every import checks the grants before doing anything.

use super::bindings::wit_host;
use super::limits::{CapabilityLog, MemoryBudget};
use crate::capability::{self, Grants, Request};
use crate::target::{CapabilityError, Target};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Log lines kept per call; past this a plugin's log is cut (and says so).
const MAX_LOG_LINES: usize = 500;
const MAX_LOG_LINE: usize = 2000;
/// WASI resource handles a call may hold at once (wasmtime's default is a million).
const MAX_RESOURCES: usize = 10_000;

/// One capability call and how it went: evidence for reports and guided mode.
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityUse {
    pub capability: String,
    pub request: String,
    /// `ok`, `denied`, `not-captured`, `failed` or `timed-out`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginLog {
    pub level: String,
    pub message: String,
}

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

    /// The grant check that opens every capability; records the request either way.
    pub(crate) fn admit(&mut self, request: &Request) -> Result<Instant, CapabilityError> {
        match self.grants.check(request) {
            Ok(()) => Ok(Instant::now()),
            Err(why) => {
                self.record::<()>(
                    request,
                    Instant::now(),
                    Err(&CapabilityError::Denied(why.clone())),
                );
                Err(CapabilityError::Denied(why))
            }
        }
    }

    /// Denies a request the host refuses whatever the grants say (a malformed path or
    /// host name), recording it like any denial.
    pub(crate) fn refuse(&mut self, request: &Request, why: String) -> CapabilityError {
        let err = CapabilityError::Denied(why);
        self.record::<()>(request, Instant::now(), Err(&err));
        err
    }

    pub(crate) fn record<T>(
        &mut self,
        request: &Request,
        started: Instant,
        result: Result<T, &CapabilityError>,
    ) {
        if !self.journal.has_room() {
            self.journal.drop_one();
            return;
        }
        let (outcome, detail) = match result {
            Ok(_) => ("ok".to_string(), None),
            Err(e) => (e.kind().to_string(), Some(e.to_string())),
        };
        self.journal.push(CapabilityUse {
            capability: request.kind().into(),
            request: request.display(),
            outcome,
            detail,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }

    pub(crate) fn push_log(&mut self, level: &str, message: String) {
        if self.logs.len() < MAX_LOG_LINES {
            let mut message = message;
            if message.len() > MAX_LOG_LINE {
                let mut cut = MAX_LOG_LINE;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                message.push('…');
            }
            self.logs.push(PluginLog {
                level: level.into(),
                message,
            });
        } else if self.logs.len() == MAX_LOG_LINES {
            self.logs.push(PluginLog {
                level: "warn".into(),
                message: "further log lines dropped".into(),
            });
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

pub(crate) fn to_wit(e: CapabilityError) -> wit_host::CapabilityError {
    match e {
        CapabilityError::Denied(m) => wit_host::CapabilityError::Denied(m),
        CapabilityError::NotCaptured(m) => wit_host::CapabilityError::NotCaptured(m),
        CapabilityError::Failed(m) => wit_host::CapabilityError::Failed(m),
        CapabilityError::TimedOut(m) => wit_host::CapabilityError::TimedOut(m),
    }
}

type HostResult<T> = wasmtime::Result<Result<T, wit_host::CapabilityError>>;

impl wit_host::Host for CallState {
    async fn exec(&mut self, argv: Vec<String>) -> HostResult<wit_host::ExecOutput> {
        Ok(capability::exec::exec(self, argv).await.map_err(to_wit))
    }

    async fn http(&mut self, request: wit_host::HttpRequest) -> HostResult<wit_host::HttpResponse> {
        Ok(capability::http::http(self, request).await.map_err(to_wit))
    }

    async fn read_file(&mut self, path: String, max_bytes: u64) -> HostResult<Vec<u8>> {
        Ok(capability::read_file::read_file(self, path, max_bytes)
            .await
            .map_err(to_wit))
    }

    async fn resolve(&mut self, host: String) -> HostResult<Vec<String>> {
        Ok(capability::resolve::resolve(self, host)
            .await
            .map_err(to_wit))
    }

    async fn connect(&mut self, host: String, port: u16, timeout_ms: u32) -> HostResult<u32> {
        Ok(capability::connect::connect(self, host, port, timeout_ms)
            .await
            .map_err(to_wit))
    }

    async fn log(&mut self, level: wit_host::LogLevel, message: String) -> wasmtime::Result<()> {
        capability::log::log(self, level, message);
        Ok(())
    }

    async fn now(&mut self) -> wasmtime::Result<i64> {
        Ok(self.target.now())
    }
}
