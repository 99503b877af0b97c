//! Heap tuning for the training loop.
//!
//! Every step, candle's backward allocates a fresh gradient buffer per tensor (zeros, then the
//! accumulated sum) and frees it at the end of the step. glibc serves blocks above its mmap
//! threshold (128 KiB at first) with fresh `mmap`s and returns them on `free`, so each step
//! page-faults and zero-fills every buffer again: on `mnist_fc` that was ~480k page faults in a
//! 30-step bench and a third of its CPU time (`perf stat`). Serving large blocks from the heap
//! (no mmap) with a high trim threshold keeps freed blocks for the next step.

/// Makes glibc keep freed gradient buffers for reuse (a no-op on other C libraries).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // The conv presets' im2col buffers exceed the 32 MiB cap on the threshold: serve every
        // block from the heap (conv bench: 525k -> 183k page faults).
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}
