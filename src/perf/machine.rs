//! The machine as the benchmark sees it: fp32 peak from the CPU's vector unit, core count and
//! clock; copy bandwidth measured on the spot; peak resident memory.

use std::time::Instant;

/// The widest fp32 vector unit the CPU reports, and the FLOPs per cycle per core it is assumed
/// to sustain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorUnit {
    pub isa: &'static str,
    /// The assumption behind `flops_per_cycle`, for printing.
    pub assumption: &'static str,
    pub flops_per_cycle: f64,
}

/// The vector unit for these CPU features. Two FMA pipes of the full width is what recent x86
/// cores have (Intel since Haswell, AMD since Zen 2); some AVX-512 parts have one 512-bit pipe
/// and Zen 1 splits 256-bit FMAs in two, so the peak printed is an upper bound there.
pub fn vector_unit(avx512f: bool, avx2: bool, fma: bool, avx: bool) -> VectorUnit {
    match (avx512f && fma, avx2 && fma, avx) {
        (true, _, _) => VectorUnit {
            isa: "AVX-512F",
            assumption: "2 FMA pipes x 16 fp32 lanes x 2 FLOPs",
            flops_per_cycle: 64.0,
        },
        (false, true, _) => VectorUnit {
            isa: "AVX2+FMA",
            assumption: "2 FMA pipes x 8 fp32 lanes x 2 FLOPs",
            flops_per_cycle: 32.0,
        },
        (false, false, true) => VectorUnit {
            isa: "AVX",
            assumption: "1 add + 1 multiply pipe x 8 fp32 lanes",
            flops_per_cycle: 16.0,
        },
        _ => VectorUnit {
            isa: "SSE",
            assumption: "1 add + 1 multiply pipe x 4 fp32 lanes",
            flops_per_cycle: 8.0,
        },
    }
}

/// The vector unit of this CPU (x86-64 only).
pub fn detect_vector_unit() -> Option<VectorUnit> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(vector_unit(
            is_x86_feature_detected!("avx512f"),
            is_x86_feature_detected!("avx2"),
            is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("avx"),
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The clock in MHz from `/proc/cpuinfo` (`cpu MHz`, highest over the cores) or from `lscpu`
/// (`CPU max MHz`, else `CPU MHz`) text.
pub fn parse_mhz(text: &str) -> Option<f64> {
    let value = |key: &str| -> Option<f64> {
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().parse::<f64>().ok())?
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .reduce(f64::max)
    };
    value("cpu MHz")
        .or_else(|| value("CPU max MHz"))
        .or_else(|| value("CPU MHz"))
}

/// The clock and where it was read.
pub fn clock_mhz() -> Option<(f64, &'static str)> {
    if let Some(mhz) = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| parse_mhz(&t))
    {
        return Some((mhz, "/proc/cpuinfo cpu MHz"));
    }
    let out = std::process::Command::new("lscpu").output().ok()?;
    parse_mhz(&String::from_utf8_lossy(&out.stdout)).map(|m| (m, "lscpu"))
}

/// `model name` from `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
}

/// The fp32 peak of `cores` cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuPeak {
    pub unit: VectorUnit,
    pub mhz: f64,
    pub cores: usize,
}

impl CpuPeak {
    pub fn gflops(&self) -> f64 {
        self.unit.flops_per_cycle * self.mhz * 1e-3 * self.cores as f64
    }

    /// The assumption in one line.
    pub fn describe(&self, clock_source: &str) -> String {
        format!(
            "{}: {} = {} FLOP/cycle/core x {:.0} MHz ({clock_source}) x {} core{} = {:.1} GFLOP/s",
            self.unit.isa,
            self.unit.assumption,
            self.unit.flops_per_cycle,
            self.mhz,
            self.cores,
            if self.cores == 1 { "" } else { "s" },
            self.gflops()
        )
    }
}

/// Bytes Adam must move per step: theta, g, m, v read and theta, m, v written, 4 bytes each.
pub fn adam_traffic_bytes(params: usize) -> f64 {
    7.0 * 4.0 * params as f64
}

/// Copy bandwidth in bytes/s (bytes read + bytes written, as STREAM's copy): the best of `reps`
/// copies of a `bytes`-sized buffer split over `threads` threads.
pub fn copy_bandwidth(bytes: usize, threads: usize, reps: usize) -> f64 {
    let n = bytes / 4;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        std::thread::scope(|s| {
            for (d, from) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                s.spawn(move || d.copy_from_slice(from));
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    2.0 * (n * 4) as f64 / best
}

/// Peak resident set of this process in MiB (`VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets `VmHWM` to the current resident set (Linux >= 4.0), so that the next reading is the
/// peak of what follows; false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time of this process so far, all threads, in ns (`CLOCK_PROCESS_CPUTIME_ID`, which keeps
/// the time of threads that have exited: a sum over `/proc/self/task` loses it and can go
/// backwards). Unlike wall time it does not count the time other processes took the cores from
/// us, though it does count thread pools' spin-waiting.
pub fn process_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid place for the result.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_arithmetic() {
        let p = CpuPeak {
            unit: vector_unit(false, true, true, true),
            mhz: 2500.0,
            cores: 2,
        };
        // 32 FLOP/cycle x 2.5 GHz x 2 cores
        assert_eq!(p.gflops(), 160.0);
        assert!(p.describe("test").contains("AVX2+FMA"));
        assert_eq!(vector_unit(true, true, true, true).flops_per_cycle, 64.0);
        // AVX2 without FMA cannot fuse: no FMA peak.
        assert_eq!(vector_unit(false, true, false, true).flops_per_cycle, 16.0);
        assert_eq!(vector_unit(false, false, false, false).flops_per_cycle, 8.0);
    }

    #[test]
    fn clock_from_cpuinfo_and_lscpu() {
        let cpuinfo =
            "processor\t: 0\ncpu MHz\t\t: 2445.434\nprocessor\t: 1\ncpu MHz\t\t: 2600.0\n";
        assert_eq!(parse_mhz(cpuinfo), Some(2600.0));
        let lscpu = "Model name:   AMD EPYC\nCPU MHz:   1800.000\nCPU max MHz:  3500.0000\n";
        assert_eq!(parse_mhz(lscpu), Some(3500.0));
        assert_eq!(parse_mhz("CPU MHz: 1800\n"), Some(1800.0));
        assert_eq!(parse_mhz("cpu MHz : unknown\n"), None);
        assert_eq!(parse_mhz(""), None);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let Some(a) = process_cpu_ns() else { return }; // not Linux
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let b = process_cpu_ns().unwrap();
        assert!(b > a, "{a} -> {b} after {x}");
    }

    #[test]
    fn adam_traffic() {
        assert_eq!(adam_traffic_bytes(1_000_000), 28e6);
    }

    #[test]
    fn copy_bandwidth_is_positive_and_finite() {
        let bw = copy_bandwidth(1 << 20, 2, 2);
        assert!(bw.is_finite() && bw > 0.0);
    }
}
