//! Sizes and randomness of the fault suites: CI sizes by default, the full soak with
//! `BERTH_SOAK=1`; random moments from a seed that `BERTH_FAULTS_SEED` repeats.

/// Whether BERTH_SOAK asks for the full sizes.
pub fn soak() -> bool {
    std::env::var("BERTH_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `ci` normally, `soak_n` with BERTH_SOAK=1.
pub fn sized(ci: usize, soak_n: usize) -> usize {
    if soak() {
        soak_n
    } else {
        ci
    }
}

/// xorshift64*: random kill moments that a seed repeats.
pub struct Rng(u64);

impl Rng {
    /// Seeded from BERTH_FAULTS_SEED, else the clock; the seed is printed for a rerun.
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("BERTH_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            t.as_nanos() as u64 ^ std::process::id() as u64
        });
        eprintln!("{test}: BERTH_FAULTS_SEED={seed}");
        Rng(seed | 1)
    }

    /// A number in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
