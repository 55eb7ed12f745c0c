//! How much host memory one plugin call may take: one budget for everything the guest can
//! grow (its linear memories and its tables), and a capability log cut to a fixed size.
//!
//! wasmtime's own `StoreLimits` caps each memory and each table separately, so a plugin
//! with four memories had four times the cap, and a table with no element limit grew by
//! 100 million entries (800 MB of host memory) under a "256 MiB" cap. Here every byte of
//! every memory and table counts against the one budget the policy sets.

use crate::capability::{self, CapabilityUse};
use wasmtime::ResourceLimiter;

/// wasmtime keeps one pointer per table element (see `ResourceLimiter::table_growing`).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// A plugin is one component: a few core instances, one or two memories, a few tables.
/// These counts are far above what any real plugin has and far below harm.
const MAX_INSTANCES: usize = 32;
const MAX_MEMORIES: usize = 8;
const MAX_TABLES: usize = 64;

/// The store's resource limiter: all memories and tables share `cap` bytes. Asking for
/// more traps (a guest's allocator would abort on a failed grow anyway), and `exceeded`
/// tells the caller why the call stopped.
#[derive(Debug)]
pub struct MemoryBudget {
    cap: usize,
    used: usize,
    exceeded: bool,
}

impl MemoryBudget {
    pub fn new(cap: usize) -> Self {
        MemoryBudget {
            cap,
            used: 0,
            exceeded: false,
        }
    }

    /// Whether the call was stopped because it asked for more than the budget.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    fn take(&mut self, bytes: usize, what: &str) -> wasmtime::Result<bool> {
        match self
            .used
            .checked_add(bytes)
            .filter(|&total| total <= self.cap)
        {
            Some(total) => {
                self.used = total;
                Ok(true)
            }
            None => {
                self.exceeded = true;
                Err(wasmtime::Error::msg(format!(
                    "{what}: the plugin's memories and tables would need more than the {} MiB memory cap",
                    self.cap >> 20
                )))
            }
        }
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // Past the memory's own declared maximum: wasmtime refuses it after asking,
            // and memory_grow_failed below turns that into a trap. Nothing is taken.
            return Ok(false);
        }
        self.take(desired.saturating_sub(current), "growing a memory")
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // A failed grow stops the call, so what was taken for it never needs giving back.
        Err(error.context("growing a memory failed"))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let elements = desired.saturating_sub(current);
        self.take(
            elements.saturating_mul(TABLE_ELEMENT_BYTES),
            "growing a table",
        )
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a table failed"))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Capability calls kept per plugin call, and the bytes their text may take. A plugin that
/// calls in a loop (2,000 denied reads of a 1 MiB path took 3 GiB before this) keeps only
/// the first ones; the log ends with one entry saying how many more were dropped.
pub const LOG_MAX_ENTRIES: usize = 1000;
pub const LOG_MAX_BYTES: usize = 1 << 20;
/// A request or detail longer than this is cut (and ends with `…`).
pub const LOG_MAX_TEXT: usize = 4096;

#[derive(Debug, Default)]
pub struct CapabilityLog {
    entries: Vec<CapabilityUse>,
    bytes: usize,
    dropped: usize,
}

impl CapabilityLog {
    /// Whether another entry would still be kept (so callers can skip building one).
    pub fn has_room(&self) -> bool {
        self.entries.len() < LOG_MAX_ENTRIES && self.bytes < LOG_MAX_BYTES
    }

    pub fn push(&mut self, mut entry: CapabilityUse) {
        if !self.has_room() {
            self.dropped += 1;
            return;
        }
        truncate_text(&mut entry.request, LOG_MAX_TEXT);
        if let Some(detail) = &mut entry.detail {
            truncate_text(detail, LOG_MAX_TEXT);
        }
        let size = entry.capability.len()
            + entry.request.len()
            + entry.outcome.len()
            + entry.detail.as_ref().map_or(0, String::len);
        if self.bytes + size > LOG_MAX_BYTES {
            self.dropped += 1;
            self.bytes = LOG_MAX_BYTES;
            return;
        }
        self.bytes += size;
        self.entries.push(entry);
    }

    /// Counts a call that was not logged at all.
    pub fn drop_one(&mut self) {
        self.dropped += 1;
    }

    /// The log as reported: the kept entries, then one `dropped` entry when any were cut.
    pub fn take(&mut self) -> Vec<CapabilityUse> {
        let mut entries = std::mem::take(&mut self.entries);
        let dropped = std::mem::take(&mut self.dropped);
        self.bytes = 0;
        if dropped > 0 {
            entries.push(CapabilityUse {
                capability: "log".into(),
                request: String::new(),
                outcome: "dropped".into(),
                detail: Some(format!(
                    "{dropped} more capability calls were not logged (a plugin call's log keeps at most {LOG_MAX_ENTRIES} calls and {} KiB)",
                    LOG_MAX_BYTES >> 10
                )),
                duration_ms: 0,
            });
        }
        entries
    }
}

impl capability::Journal for CapabilityLog {
    fn has_room(&self) -> bool {
        CapabilityLog::has_room(self)
    }

    fn push(&mut self, entry: CapabilityUse) {
        CapabilityLog::push(self, entry)
    }

    fn drop_one(&mut self) {
        CapabilityLog::drop_one(self)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate_text(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(request: String) -> CapabilityUse {
        CapabilityUse {
            capability: "read_file".into(),
            request,
            outcome: "denied".into(),
            detail: Some("x".repeat(10_000)),
            duration_ms: 0,
        }
    }

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut b = MemoryBudget::new(256 << 20);
        assert!(b.memory_growing(0, 200 << 20, None).unwrap());
        // A second memory may not have another 256 MiB.
        assert!(b.memory_growing(0, 100 << 20, None).is_err());
        assert!(b.exceeded());
        let mut b = MemoryBudget::new(256 << 20);
        assert!(b.table_growing(0, 1000, None).unwrap());
        assert!(b.table_growing(1000, 100_000_000, None).is_err());
        // A memory's own maximum is the module's business: refused, not over budget.
        let mut b = MemoryBudget::new(256 << 20);
        assert!(!b.memory_growing(0, 2 << 20, Some(1 << 20)).unwrap());
        assert!(!b.exceeded());
    }

    #[test]
    fn the_log_is_cut_by_entries_bytes_and_text() {
        let mut log = CapabilityLog::default();
        for _ in 0..2000 {
            log.push(entry("/".repeat(1 << 20)));
        }
        let entries = log.take();
        let last = entries.last().unwrap();
        assert_eq!(last.outcome, "dropped");
        let kept = entries.len() - 1;
        assert!(kept < 200, "{kept}");
        assert!(
            last.detail
                .as_ref()
                .unwrap()
                .starts_with(&format!("{} more", 2000 - kept))
        );
        assert!(entries[0].request.len() <= LOG_MAX_TEXT);
        assert!(entries[0].request.ends_with('…'));
        let total: usize = entries
            .iter()
            .map(|e| e.request.len() + e.detail.as_ref().map_or(0, String::len))
            .sum();
        assert!(total <= LOG_MAX_BYTES + 1024, "{total}");

        let mut log = CapabilityLog::default();
        for _ in 0..5000 {
            log.push(entry("/var/log/x".into()));
        }
        let entries = log.take();
        // 10 KB details are cut to 4 KiB, so bytes end the log before the entry count does.
        assert!(entries.len() <= LOG_MAX_ENTRIES + 1);
        assert_eq!(entries.last().unwrap().outcome, "dropped");
    }
}
