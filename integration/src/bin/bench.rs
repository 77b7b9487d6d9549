//! `bench`: issue 9's benchmark suite (berth vs runc and crun, berth-shim vs conmon, and
//! the floor). The code is in integration/src/bench/; see integration/BENCHMARKS.md.
//!
//!     cargo build --release --workspace && target/release/bench [--rounds N] [--json FILE]

#[path = "../bench/mod.rs"]
mod bench;

fn main() {
    bench::main()
}
