//! The builder part of issue 9: berth-build against buildah. The extension point.
//!
//! berth-build's command line is not wired up yet (its `main` refuses every command), so
//! [`run`] only checks whether a working berth-build exists and records the planned
//! scenarios as not measured. When it works, add them here, recorded under section
//! "builder" with subjects "berth-build" and "buildah" (the report then prints the
//! `berth-build/buildah` ratio of every metric both have, see report.rs), interleaved
//! like the runtimes (`super::rotated`), each command timed through `ctx.procs` so its
//! rusage (CPU, peak RSS) is recorded with `ctx.rec.exit`:
//!
//! - `build_cold`: a Dockerfile `FROM scratch` + `COPY busybox /bin/` + `RUN ["/bin/true"]`
//!   from an empty cache (buildah: `buildah bud --layers --storage-driver vfs`, its
//!   storage in the bench's temp dir via `--root`/`--runroot`);
//! - `build_cached`: the same again, every step from the cache;
//! - `build_run_heavy`: 20 `RUN` steps (per-step container cost, through berth);
//! - `build_copy_large`: `COPY` of a 200 MB context (hashing, layer tar + gzip);
//! - peak RSS of each build command and the size of the resulting image.

use super::{Ctx, Result};

/// The scenarios above, for the report's "not measured" list.
pub const PLANNED: &[&str] = &[
    "builder: build_cold (FROM scratch + COPY + RUN, empty cache) vs buildah bud",
    "builder: build_cached (same, all cached)",
    "builder: build_run_heavy (20 RUN steps)",
    "builder: build_copy_large (200 MB context)",
    "builder: peak RSS and image size",
];

/// Whether berth-build exists and accepts a command (`--version` exits 0).
fn usable(ctx: &Ctx) -> bool {
    let bin = &ctx.opts.berth_build;
    bin.exists()
        && std::process::Command::new(bin)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    let why = if !ctx.opts.berth_build.exists() {
        format!("{} does not exist", ctx.opts.berth_build.display())
    } else if !usable(ctx) {
        format!("{} --version fails (its command line is not wired up yet)", ctx.opts.berth_build.display())
    } else {
        "berth-build works now, but its scenarios are not written yet (see integration/src/bench/builder.rs)".to_string()
    };
    ctx.notes.push(format!("builder not measured: {why}"));
    Ok(())
}
