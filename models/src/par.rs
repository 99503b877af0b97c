//! Data parallelism on candle's own CPU thread pool (the barrier pool its elementwise kernels and,
//! with our patch, its matmuls use), so that one set of briefly-spinning workers serves the whole
//! training step: a second pool (rayon) would sleep between calls and fight the first for the
//! cores.

/// Runs `f(i)` for every `i` in `0..n`, spread over candle's CPU threads (inline on one thread).
pub fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    if n == 0 {
        return;
    }
    candle_core::utils::barrier_pool().execute_chunked(n, |range| range.for_each(&f));
}

/// Runs `f(start, len)` for consecutive ranges of `chunk` elements covering `0..n` (the last
/// one shorter), spread over candle's CPU threads.
pub fn for_each_chunk(n: usize, chunk: usize, f: impl Fn(usize, usize) + Sync) {
    for_each(n.div_ceil(chunk), |i| {
        let start = i * chunk;
        f(start, chunk.min(n - start));
    });
}

/// A raw pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
pub struct SharedMut<T>(*mut T);

// SAFETY: users only write disjoint ranges through it (each call site says why).
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(s: &mut [T]) -> Self {
        Self(s.as_mut_ptr())
    }

    /// The `len` elements from `offset`.
    ///
    /// # Safety
    /// The range must lie inside the buffer, and no other live slice may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(offset), len)
    }
}

/// The f32 data of a contiguous CPU tensor's storage (custom ops' `cpu_fwd`); `what` names the
/// op in the error.
pub fn contiguous_f32<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = s else {
        candle_core::bail!("{what}: f32 tensors only")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: contiguous tensors only")
    };
    Ok(&data[a..b])
}
