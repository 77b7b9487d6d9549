//! The builder part of issues 9 and 16: berth-build against Debian's buildah and against
//! BuildKit as Debian's dockerd 20.10 embeds it (`DOCKER_BUILDKIT=1 docker build`, see
//! [`super::buildkit`]) on the same Dockerfiles and contexts, interleaved round by round
//! (`super::rotated`), each build timed through `ctx.procs` (wall, CPU of the command and
//! everything it waited for, peak RSS; for buildkit plus the daemons' share).
//!
//! No registry is reachable, so all start `FROM scratch` and copy busybox in; RUN steps
//! use the exec form. berth-build gets its own `--store`, buildah its own `--root`,
//! `--runroot` (overlay storage driver) and `--isolation chroot`, dockerd its own data
//! root, all in the bench's temp dir. buildah and buildkit are each skipped with a note
//! when missing. Scenarios (subjects "berth-build", "buildah", "buildkit"; section
//! "builder"):
//!
//! - `cold`: the app Dockerfile (COPY busybox, RUN --install, COPY app/, RUN) with
//!   `--no-cache` (buildkit: after `docker builder prune -af`, untimed);
//! - `rebuild`: the same again, unchanged (every step from the cache);
//! - `rebuild_copy`: after one file of the COPY source changed (the last two steps run);
//! - `multi`: a multi-stage build, `--no-cache`: a base stage, three stages on it that do
//!   independent RUN work (gzip, many small files and a tar, sha256sum and bzip2), and a
//!   final stage that copies from each. Each builder runs independent stages as it does
//!   by default; buildah gets `--jobs` (its default is one stage at a time).
//! - `big`: a RUN step that writes 200 MB in 20,000 files (extracted from a tar
//!   bind-mounted from the context), the whole build with `--no-cache`;
//! - `commit_200mb`: the commit of that step alone. buildah: `buildah commit` of a
//!   working container in which the same RUN ran (`buildah from` + `copy` + `run`,
//!   untimed), timed as a command. berth-build has no separate commit command; its
//!   build reports the time of each step's commit (diff of the upper dir, tar,
//!   compression, store: `layer <digest> <size> in <secs>s` in `--progress plain`),
//!   read from the same `big` build. BuildKit commits a step's snapshot lazily: the diff
//!   becomes a layer when the image is exported (`exporting layers N.Ns done` in its
//!   plain progress), read from its `big` build likewise. (Comparing the whole build with one where the
//!   step deletes its files does not isolate the commit: deleting 20,000 files costs
//!   about as much as berth-build's commit.)
//! - `export_oci`: an OCI layout of the app image: berth-build's cached build with
//!   `--output type=oci,tar=false` (so it includes the cached build) against `buildah push IMG
//!   oci:DIR`. Not for buildkit: dockerd's BuildKit (docker 20.10, no buildx) exports
//!   only to dockerd's image store, a local dir or a tar of the files.

use super::buildkit::Dockerd;
use super::procs::Exit;
use super::{rotated, Ctx, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The subjects in the report's order.
pub const SUBJECTS: [&str; 3] = ["berth-build", "buildah", "buildkit"];
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
const FILES: usize = 20_000;
const FILE_SIZE: usize = 10_240;

/// The scenarios, for the report's "not measured" list when the section did not run.
pub const PLANNED: &[&str] = &[
    "builder: cold build, unchanged rebuild, rebuild after a changed COPY source (berth-build vs buildah bud vs BuildKit in dockerd)",
    "builder: multi-stage build with independent stages",
    "builder: commit of a step that writes 200 MB in 20,000 files",
    "builder: export to an OCI layout",
];

/// The rows of the report's BUILDER table: label, op.
pub const ROWS: &[(&str, &str)] = &[
    ("cold build (--no-cache)", "cold"),
    ("unchanged rebuild (all cached)", "rebuild"),
    ("rebuild after one changed COPY source", "rebuild_copy"),
    ("multi-stage, 3 independent stages", "multi"),
    ("build writing 200 MB in 20k files", "big"),
    ("commit of that 200 MB step", "commit_200mb"),
    ("export to an OCI layout", "export_oci"),
];

struct Dirs {
    app: PathBuf,
    big: PathBuf,
    multi: PathBuf,
    store: PathBuf,
    buildah_root: PathBuf,
    buildah_runroot: PathBuf,
}

fn usable(bin: &Path) -> bool {
    bin.exists()
        && std::process::Command::new(bin)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn write(p: &Path, text: &[u8]) -> Result<()> {
    std::fs::write(p, text).map_err(|e| format!("write {}: {e}", p.display()))
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

/// A context: busybox, the Dockerfile, and what `extra` adds.
fn context(dir: &Path, dockerfile: &str) -> Result<()> {
    mkdir(dir)?;
    std::fs::copy("/bin/busybox", dir.join("busybox")).map_err(|e| format!("copy busybox: {e}"))?;
    write(&dir.join("Dockerfile"), dockerfile.as_bytes())
}

const APP: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY app/ /app/
RUN ["/bin/sh", "-c", "cat /app/* | wc -c > /size"]
"#;

/// The stages between `base` and the last one: what buildah's `--jobs` is set to.
const MULTI_STAGES: usize = 3;

const MULTI: &str = r#"FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin

FROM base AS gz
RUN ["/bin/sh", "-c", "mkdir /out && seq 1 2000000 > /out/numbers && gzip -9 /out/numbers"]

FROM base AS files
RUN ["/bin/sh", "-c", "mkdir /out && for i in $(seq 1 1000); do seq $i $((i + 300)) > /out/f$i; done && tar -cf /files.tar -C / out"]

FROM base AS sums
RUN ["/bin/sh", "-c", "seq 1 2000000 | sha256sum > /sums && seq 1 2000000 | bzip2 -9 > /seq.bz2"]

FROM scratch
COPY --from=gz /out/numbers.gz /out/numbers.gz
COPY --from=files /files.tar /out/files.tar
COPY --from=sums /sums /seq.bz2 /out/
"#;

const BIG: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=bind,source=data.tar,target=/data.tar \
                   [\"/bin/busybox\", \"tar\", \"-xf\", \"/data.tar\", \"-C\", \"/\"]\n";

/// 20,000 files of 10 KiB of pseudo-random bytes (xorshift: incompressible, like most
/// binaries' worst case, and quick to make) as data.tar in `dir`.
fn make_data_tar(dir: &Path) -> Result<()> {
    let src = dir.join("gen");
    let data = src.join("data");
    mkdir(&data)?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; FILE_SIZE];
    for i in 0..FILES {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        write(&data.join(format!("f{i:05}")), &buf)?;
    }
    let st =
        std::process::Command::new("tar").arg("-cf").arg(dir.join("data.tar")).arg("-C").arg(&src).arg("data").status().map_err(|e| format!("tar: {e}"))?;
    if !st.success() {
        return Err(format!("tar -cf data.tar: {st}"));
    }
    std::fs::remove_dir_all(&src).map_err(|e| format!("rm {}: {e}", src.display()))
}

fn setup(ctx: &Ctx) -> Result<Dirs> {
    let b = ctx.dir.join("builder");
    let d = Dirs {
        app: b.join("app"),
        big: b.join("big"),
        multi: b.join("multi"),
        store: b.join("store"),
        buildah_root: b.join("buildah-root"),
        buildah_runroot: b.join("buildah-runroot"),
    };
    context(&d.app, APP)?;
    mkdir(&d.app.join("app"))?;
    for i in 0..3 {
        write(&d.app.join("app").join(format!("f{i}")), format!("file {i}\n").as_bytes())?;
    }
    context(&d.multi, MULTI)?;
    context(&d.big, BIG)?;
    make_data_tar(&d.big)?;
    Ok(d)
}

fn buildah_args<'a>(d: &'a Dirs, rest: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--root".into(),
        d.buildah_root.to_string_lossy().into_owned(),
        "--runroot".into(),
        d.buildah_runroot.to_string_lossy().into_owned(),
        "--storage-driver".into(),
        "overlay".into(),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// The command line of one build by `who`.
fn build_args(d: &Dirs, who: &str, context: &Path, tag: &str, no_cache: bool, oci_out: Option<&Path>) -> Vec<String> {
    build_args_with(d, who, context, tag, no_cache, oci_out, "-q")
}

/// `quiet`: "-q", or for berth-build "--progress=plain" (the step notes on stderr).
fn build_args_with(d: &Dirs, who: &str, context: &Path, tag: &str, no_cache: bool, oci_out: Option<&Path>, quiet: &str) -> Vec<String> {
    let c = context.to_string_lossy().into_owned();
    if who == "buildah" {
        let mut rest = vec!["bud", "--layers", "--isolation", "chroot", "-q", "-t", tag];
        if no_cache {
            rest.push("--no-cache");
        }
        let jobs = format!("--jobs={MULTI_STAGES}");
        if context == d.multi {
            rest.push(&jobs);
        }
        rest.push(&c);
        return buildah_args(d, &rest);
    }
    if who == "buildkit" {
        // The client's -q hides the progress; --progress=plain prints it to stderr.
        let mut v: Vec<String> = vec!["build".into(), quiet.into(), "-t".into(), tag.into()];
        if no_cache {
            v.push("--no-cache".into());
        }
        v.push(c);
        return v;
    }
    let mut v: Vec<String> = vec!["--store".into(), d.store.to_string_lossy().into_owned(), "build".into(), quiet.into(), "-t".into(), tag.into()];
    if no_cache {
        v.push("--no-cache".into());
    }
    if let Some(o) = oci_out {
        v.push("--output".into());
        v.push(format!("type=oci,dest={},tar=false", o.display()));
    }
    v.push(c);
    v
}

/// The subjects that run here, and dockerd for buildkit.
struct Subjects {
    names: Vec<&'static str>,
    dockerd: Option<Dockerd>,
}

impl Subjects {
    /// Runs a builder command of `who` to completion and fails unless it exits 0.
    fn run(&self, ctx: &mut Ctx, who: &str, args: &[String], slot: &str) -> Result<Exit> {
        match (&self.dockerd, who) {
            (Some(dk), "buildkit") => dk.run(ctx, args, slot, BUILD_TIMEOUT),
            (None, "buildkit") => Err("buildkit: dockerd is not running".into()),
            _ => ctx.run_builder(who, args, slot),
        }
    }

    /// A cold build for buildkit also starts without its build cache (untimed):
    /// `--no-cache` alone would still reuse the sources it transferred before.
    fn before_cold(&self, ctx: &mut Ctx, who: &str) -> Result<()> {
        if who == "buildkit" {
            self.run(ctx, who, &["builder".into(), "prune".into(), "-af".into()], "b-prune")?;
        }
        Ok(())
    }
}

impl Ctx {
    /// Runs a builder command to completion and fails unless it exits 0.
    fn run_builder(&mut self, who: &str, args: &[String], slot: &str) -> Result<Exit> {
        let bin = if who == "buildah" { self.opts.buildah.clone() } else { self.opts.berth_build.clone() };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.command(&bin, None, &argv, slot, false)?;
        let pid = self.procs.spawn(&mut cmd)?;
        let e = self.procs.wait(pid, BUILD_TIMEOUT)?;
        if !e.success() {
            return Err(self.describe_failure(&format!("{who} {}", args.join(" ")), slot, &e));
        }
        Ok(e)
    }
}

fn one_round(ctx: &mut Ctx, d: &Dirs, subj: &Subjects, round: usize) -> Result<()> {
    let s = "builder";
    let order = rotated(&subj.names, round);
    for who in &order {
        subj.before_cold(ctx, who)?;
        let e = subj.run(ctx, who, &build_args(d, who, &d.app, "app:1", true, None), "b-cold")?;
        ctx.rec.exit(s, who, "cold", &e);
        let e = subj.run(ctx, who, &build_args(d, who, &d.app, "app:1", false, None), "b-rebuild")?;
        ctx.rec.exit(s, who, "rebuild", &e);
    }
    // One changed COPY source, the same change for all.
    write(&d.app.join("app/f0"), format!("file 0, round {round}\n").as_bytes())?;
    for who in &order {
        let e = subj.run(ctx, who, &build_args(d, who, &d.app, "app:1", false, None), "b-copy")?;
        ctx.rec.exit(s, who, "rebuild_copy", &e);
    }
    for who in &order {
        subj.before_cold(ctx, who)?;
        let e = subj.run(ctx, who, &build_args(d, who, &d.multi, "multi:1", true, None), "b-multi")?;
        ctx.rec.exit(s, who, "multi", &e);
    }
    for who in order.iter().filter(|w| **w != "buildkit") {
        let oci = ctx.dir.join("builder").join(format!("oci-{who}-{round}"));
        let e = if *who == "buildah" {
            let dest = format!("oci:{}", oci.display());
            ctx.run_builder(who, &buildah_args(d, &["push", "-q", "localhost/app:1", &dest]), "b-export")?
        } else {
            ctx.run_builder(who, &build_args(d, who, &d.app, "app:1", false, Some(&oci)), "b-export")?
        };
        if !oci.join("index.json").exists() {
            return Err(format!("{who}: no OCI layout at {}", oci.display()));
        }
        ctx.rec.exit(s, who, "export_oci", &e);
        let _ = std::fs::remove_dir_all(&oci);
    }
    for who in &order {
        let quiet = if *who == "buildah" { "-q" } else { "--progress=plain" };
        subj.before_cold(ctx, who)?;
        let e = subj.run(ctx, who, &build_args_with(d, who, &d.big, "big:1", true, None, quiet), "b-big")?;
        ctx.rec.exit(s, who, "big", &e);
        let (out, err) = ctx.io_paths("b-big");
        let text = || std::fs::read_to_string(&err).unwrap_or_default() + &std::fs::read_to_string(&out).unwrap_or_default();
        let commit_ms = match *who {
            "buildah" => buildah_commit_ms(ctx, d)?,
            "buildkit" => export_layers_secs(&text()).ok_or("docker build --progress=plain printed no \"exporting layers N.Ns done\"")? * 1000.0,
            _ => last_commit_secs(&text()).ok_or("berth-build --progress=plain printed no \"layer ... in Ns\" note")? * 1000.0,
        };
        ctx.rec.push(s, who, "commit_200mb.wall_ms", commit_ms);
    }
    Ok(())
}

/// The time of the last step's commit in berth-build's plain progress output
/// (`#3 layer 9c94850e0af5 215.1MB in 0.912s`).
fn last_commit_secs(progress: &str) -> Option<f64> {
    progress.lines().filter(|l| l.contains(" layer ")).filter_map(|l| l.rsplit_once(" in ")?.1.strip_suffix('s')?.parse::<f64>().ok()).next_back()
}

/// The time BuildKit took to turn the snapshots into the image's layers, in its plain
/// progress (`#8 exporting layers 2.3s done`).
fn export_layers_secs(progress: &str) -> Option<f64> {
    progress
        .lines()
        .filter(|l| l.contains(" exporting layers ") && l.trim_end().ends_with(" done"))
        .filter_map(|l| l.trim_end().strip_suffix(" done")?.rsplit(' ').next()?.strip_suffix('s')?.parse::<f64>().ok())
        .next_back()
}

/// buildah: the big step's RUN in a working container (untimed), then `buildah commit`
/// of it, timed.
fn buildah_commit_ms(ctx: &mut Ctx, d: &Dirs) -> Result<f64> {
    let name = "berth-bench-commit";
    let tar = d.big.join("data.tar");
    let bb = d.big.join("busybox");
    let mount = format!("{}:/data.tar:ro", tar.display());
    let (bb_s, cmd) = (bb.to_string_lossy().into_owned(), ["/bin/busybox", "tar", "-xf", "/data.tar", "-C", "/"]);
    ctx.run_builder("buildah", &buildah_args(d, &["from", "--name", name, "scratch"]), "b-commit")?;
    let res = (|| -> Result<f64> {
        ctx.run_builder("buildah", &buildah_args(d, &["copy", "-q", name, &bb_s, "/bin/busybox"]), "b-commit")?;
        let mut run = vec!["run", "--isolation", "chroot", "-v", &mount, name, "--"];
        run.extend_from_slice(&cmd);
        ctx.run_builder("buildah", &buildah_args(d, &run), "b-commit")?;
        let e = ctx.run_builder("buildah", &buildah_args(d, &["commit", "-q", name, "big:commit"]), "b-commit")?;
        Ok(e.wall_ms())
    })();
    let _ = ctx.run_builder("buildah", &buildah_args(d, &["rm", name]), "b-commit");
    res
}

/// Removes buildah's containers and images (its overlay layers are mounted while used).
fn buildah_cleanup(ctx: &mut Ctx, d: &Dirs) {
    for rest in [&["rm", "-a"][..], &["rmi", "-a", "-f"][..]] {
        let _ = ctx.run_builder("buildah", &buildah_args(d, rest), "b-cleanup");
    }
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    if !usable(&ctx.opts.berth_build) {
        ctx.notes.push(format!("builder not measured: berth-build ({}) is missing or does not run", ctx.opts.berth_build.display()));
        return Ok(());
    }
    let mut names = vec!["berth-build"];
    if usable(&ctx.opts.buildah) {
        names.push("buildah");
    } else {
        ctx.notes.push(format!("builder: buildah not measured: {} is missing or does not run", ctx.opts.buildah.display()));
    }
    let buildkit = ctx.opts.buildkit;
    match super::buildkit::missing() {
        Some(why) if buildkit => ctx.notes.push(format!("builder: buildkit not measured: {why}")),
        None if buildkit => names.push("buildkit"),
        _ => ctx.notes.push("builder: buildkit not measured (--no-buildkit)".into()),
    }
    if names.len() < 2 {
        ctx.notes.push("builder not measured: nothing to compare berth-build with".into());
        return Ok(());
    }
    let d = setup(ctx)?;
    let mut subj = Subjects { names, dockerd: None };
    if subj.names.contains(&"buildkit") {
        let dir = ctx.dir.join("builder").join("dockerd");
        match Dockerd::start(ctx, &dir) {
            Ok(dk) => subj.dockerd = Some(dk),
            Err(e) => {
                ctx.notes.push(format!("builder: buildkit not measured: dockerd did not start: {e}"));
                subj.names.retain(|n| *n != "buildkit");
            }
        }
    }
    if subj.dockerd.is_some() {
        ctx.notes.push(
            "builder: buildkit has no OCI layout export (dockerd 20.10 without buildx); its CPU includes dockerd's and containerd's, its peak RSS is the larger of the client's and dockerd's"
                .into(),
        );
    }
    let rounds = ctx.opts.builder_rounds;
    let mut result = Ok(());
    for round in 0..=rounds {
        eprint!("bench: builder round {round}/{rounds}   ");
        if let Err(e) = one_round(ctx, &d, &subj, round) {
            result = Err(e);
            break;
        }
        if round == 0 {
            // The first round warms the page cache and the stores; not recorded.
            ctx.rec.data.remove("builder");
        }
    }
    eprintln!();
    // Stopped whatever happened above; the bench's cleanup unmounts and removes its dir.
    if let Some(mut dk) = subj.dockerd.take() {
        dk.stop(ctx);
    }
    if subj.names.contains(&"buildah") {
        buildah_cleanup(ctx, &d);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_times() {
        let bk = "#9 exporting to image\n#9 exporting layers\n#9 exporting layers 1.8s done\n#9 writing image sha256:ab done\n#9 DONE 1.9s\n";
        assert_eq!(super::export_layers_secs(bk), Some(1.8));
        assert_eq!(super::export_layers_secs("#9 exporting layers\n"), None);
        let bb = "#3 layer 9c94850e0af5 215.1MB in 0.912s\n#3 DONE 1.0s\n";
        assert_eq!(super::last_commit_secs(bb), Some(0.912));
    }
}
