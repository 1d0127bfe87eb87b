//! The global allocator: the system one (dlmalloc in wasm), counting current and peak heap bytes
//! (wasm memory never shrinks, so its size cannot tell what a workload needs), with an
//! emergency reserve so that a full memory gives errors, never traps.
//!
//! Why a reserve: every buffer whose size a caller controls is allocated fallibly (hesse-core's
//! `mem`, which reports OUT_OF_MEMORY), but some allocations cannot be: wasm-bindgen copies
//! argument strings and small arrays into wasm memory and aborts when that fails, and an error
//! message is a `String`. So [`RESERVE`] bytes are held back from the start. When an infallible
//! allocation fails, the reserve is released and the allocation retried (it is small: names,
//! shapes, messages); while the reserve is released, fallible allocations first try to take it
//! back and fail if they cannot, so big buffers never eat into what the small ones need.

use hesse_core::mem::in_fallible_allocation;
use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};

pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Bytes held back for the allocations that cannot fail gracefully (far more than one call's
/// bookkeeping needs once all size-dependent buffers are fallible).
pub const RESERVE: usize = 1 << 20;
const RESERVE_LAYOUT: Layout = match Layout::from_size_align(RESERVE, 16) {
    Ok(l) => l,
    Err(_) => panic!("reserve layout"),
};
/// The reserve block while held; null while released (or before the first allocation).
static HELD: AtomicPtr<u8> = AtomicPtr::new(null_mut());

/// Takes the reserve (back) if it is not held; false when memory cannot provide it.
fn hold_reserve() -> bool {
    if !HELD.load(Relaxed).is_null() {
        return true;
    }
    // SAFETY: a valid, non-zero-sized layout.
    let p = unsafe { System.alloc(RESERVE_LAYOUT) };
    if p.is_null() {
        return false;
    }
    if HELD.compare_exchange(null_mut(), p, Relaxed, Relaxed).is_err() {
        // SAFETY: p came from System.alloc with this layout and is not shared.
        unsafe { System.dealloc(p, RESERVE_LAYOUT) };
    }
    true
}

/// Releases the reserve; false when it was not held.
fn release_reserve() -> bool {
    let p = HELD.swap(null_mut(), Relaxed);
    if p.is_null() {
        return false;
    }
    // SAFETY: p was allocated by hold_reserve with RESERVE_LAYOUT and is owned by HELD only.
    unsafe { System.dealloc(p, RESERVE_LAYOUT) };
    true
}

/// Whether the reserve is currently released (memory ran out and has not recovered since).
pub fn reserve_in_use() -> bool {
    HELD.load(Relaxed).is_null()
}

/// Runs `alloc` under the reserve policy above.
fn with_reserve(alloc: impl Fn() -> *mut u8) -> *mut u8 {
    if in_fallible_allocation() {
        return if hold_reserve() { alloc() } else { null_mut() };
    }
    let p = alloc();
    if p.is_null() && release_reserve() {
        return alloc();
    }
    p
}

/// The end of linear memory in bytes (u64: 4 GiB does not fit wasm32's usize); natively 0, so
/// no block is ever taken for fresh and alloc_zeroed always clears.
fn heap_end() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = with_reserve(|| System.alloc(layout));
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    /// Zeroed memory without writing pages that are already zero: the part of a block that lies
    /// in pages this very allocation grew wasm memory by is zero by the wasm spec (dlmalloc
    /// writes only chunk headers, outside the block), so only reused memory is cleared. (dlmalloc's own
    /// calloc always clears: filling 4 GiB of zero tensors would touch, and commit, every page.)
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let before = heap_end();
        let p = with_reserve(|| System.alloc(layout));
        if !p.is_null() {
            // Bytes from `before` on are pages grown by this call (the block often starts in
            // the old top chunk's tail): clear only what lies below.
            let (start, end) = (p as u64, p as u64 + layout.size() as u64);
            let old = if end <= heap_end() { end.min(before).saturating_sub(start) } else { layout.size() as u64 };
            std::ptr::write_bytes(p, 0, old as usize);
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = with_reserve(|| System.realloc(ptr, layout, new_size));
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

/// (current, peak) heap bytes.
pub fn stats() -> (usize, usize) {
    (CURRENT.load(Relaxed), PEAK.load(Relaxed))
}

/// Starts a new peak measurement from the current level.
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Relaxed), Relaxed);
}
