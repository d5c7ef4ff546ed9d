//! One nudge to glibc's allocator, made at start by the producer and the worker
//! ([`crate::process::init_and_run`]).
//!
//! glibc serves blocks of 128 KiB and more with their own `mmap`, and returns the top of a heap
//! to the kernel as soon as 128 KiB of it is free. Both thresholds rise on their own the first
//! time a block that was mmapped is freed (to that block's size, and twice that). The producer
//! keeps its page buffers in pools and never frees one, so the thresholds stayed at 128 KiB:
//! lapin's frames of a published page (2 MB in pieces of 128 KiB minus 8 bytes, just under the
//! mmap threshold) grew the heap and were trimmed off again for every page, which tripled the
//! producer's page faults on a REST sync (85,000 to 272,000 for 1,000,000 records).
//!
//! Freeing one mmapped block of [`SETTLE_BYTES`] at start raises them as a first large page
//! would have: blocks up to 2 MiB come from the heap and freed memory is kept up to 4 MiB.
//! `mallopt` would say this directly, but needs `unsafe`, which the workspace forbids.
//! Other allocators ignore the gesture; it costs one `mmap` and `munmap`.

/// The size whose free sets glibc's thresholds: about one page message (2,000 records).
pub const SETTLE_BYTES: usize = 2 << 20;

/// Allocates and frees one block of [`SETTLE_BYTES`]; see the module documentation.
pub fn settle() {
    let block = Vec::<u8>::with_capacity(SETTLE_BYTES);
    // The address must escape, or the compiler removes an allocation nobody uses (it did).
    std::hint::black_box(block.as_ptr());
    drop(block);
}
