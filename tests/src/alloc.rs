//! A global allocator that counts live heap bytes, for the binaries that measure memory (the
//! bench, the test that closed clients are freed). Each installs it with
//! `#[global_allocator] static A: im_tests::alloc::Counting = im_tests::alloc::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting what is allocated and not yet freed.
pub struct Counting;

// SAFETY: every call is passed to `System` unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Heap bytes allocated through [`Counting`] and not yet freed (0 unless it is installed).
pub fn live_bytes() -> u64 {
    LIVE.load(Relaxed) as u64
}
