//! Test builds only: the global allocator counts allocations per thread, so that a test
//! can pin down how much work something does (how it scales with its input) without
//! timing it, and the bytes a thread holds at most (how much memory hostile input can
//! make it take).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed by this thread (negative when it frees what
    /// another thread allocated), and the highest it reached since [`reset_peak`].
    static HELD: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static BASE: Cell<i64> = const { Cell::new(0) };
}

fn count() {
    // try_with: allocations while the thread is being torn down are not counted.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

fn held(delta: i64) {
    let _ = HELD.try_with(|h| {
        let now = h.get() + delta;
        h.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        held(layout.size() as i64);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        held(layout.size() as i64);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        held(new_size as i64 - layout.size() as i64);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        held(-(layout.size() as i64));
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations (and reallocations) made by this thread so far.
pub fn allocations() -> u64 {
    COUNT.with(|c| c.get())
}

/// Starts a measurement of [`peak_bytes`] from what this thread holds now.
pub fn reset_peak() {
    let now = HELD.with(|h| h.get());
    BASE.with(|b| b.set(now));
    PEAK.with(|p| p.set(now));
}

/// The most bytes this thread held at once since [`reset_peak`], beyond what it held
/// then (allocations of other threads are not counted).
pub fn peak_bytes() -> u64 {
    (PEAK.with(|p| p.get()) - BASE.with(|b| b.get())).max(0) as u64
}
