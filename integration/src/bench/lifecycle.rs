//! The lifecycle of a busybox `/bin/true` bundle, per round and per runtime (in rotated
//! order), recorded under section "lifecycle":
//!
//! 1. `run ID` in the foreground (the runtime waits for the container, so its rusage
//!    holds the init's too): `run.*`. Also the floor (`bench-floor`, bare and with the
//!    default config's mounts, read-only root and a cgroup joined by the parent, and the
//!    same with the child joining its cgroups itself) under subjects "floor", "floor+"
//!    and "floor+sj", and, in the real hybrid layout, `run_hybrid.*` for berth and runc.
//! 2. container A: `create --pid-file F` (`create.*`); then the created init's memory
//!    (`init.rss_kb`, `init.pss_kb` from smaps_rollup) and its own CPU so far
//!    (`init.setup_cpu_ms`, from schedstat; `create_total.cpu_ms` adds the command's);
//!    `state` (`state.*`), `start` (`start.*`), the init's exit (reaped by the bench:
//!    `init.total_cpu_ms`), `delete` (`delete.*`).
//! 3. container B: `create`, `kill ID KILL` while created (`kill.*`), the init's exit,
//!    `delete` (`delete_killed.*`).

use super::{rotated, Ctx, Result, Rt, TIMEOUT};
use std::path::Path;

const S: &str = "lifecycle";

fn run_step(ctx: &mut Ctx, rt: &Rt, round: usize) -> Result<()> {
    let b = ctx.bundle(&format!("{}-run", rt.name), &["true"])?;
    let b = b.to_string_lossy().into_owned();
    let id = format!("run-{round}");
    let e = ctx.run_rt(rt, &["run", "--bundle", &b, &id], "run")?;
    ctx.rec.exit(S, &rt.name, "run", &e);
    Ok(())
}

fn run_hybrid(ctx: &mut Ctx, rt: &Rt, round: usize) -> Result<()> {
    let b = ctx.bundle(&format!("{}-runh", rt.name), &["true"])?;
    let b = b.to_string_lossy().into_owned();
    let id = format!("runh-{round}");
    let mut cmd = ctx.command(&rt.bin, Some(&rt.root), &["run", "--bundle", &b, &id], "runh", true)?;
    let pid = ctx.procs.spawn(&mut cmd)?;
    let e = ctx.procs.wait(pid, TIMEOUT)?;
    if !e.success() {
        return Err(ctx.describe_failure(&format!("{} run (hybrid layout)", rt.name), "runh", &e));
    }
    ctx.rec.exit(S, &rt.name, "run_hybrid", &e);
    Ok(())
}

/// `floor`: namespaces + pivot_root + exec; `floor+`: also the default config's mounts,
/// a read-only root and a cgroup joined by the parent (as runtimes do); `floor+sj`: the
/// same, but the child joins its v1 cgroups itself (`tasks` <- "0").
fn floor_step(ctx: &mut Ctx, kind: &str) -> Result<()> {
    let full = kind != "floor";
    let floor = ctx.opts.floor.clone();
    let rootfs = ctx.rootfs.to_string_lossy().into_owned();
    let cg = format!("{}/floor", ctx.cg_parent);
    let mut args: Vec<&str> = Vec::new();
    if full {
        args.extend(["--mounts", "--readonly", "--cgroup", &cg]);
    }
    if kind == "floor+sj" {
        args.push("--self-join");
    }
    args.extend([rootfs.as_str(), "/bin/true"]);
    let mut cmd = ctx.command(&floor, None, &args, "floor", false)?;
    let pid = ctx.procs.spawn(&mut cmd)?;
    let e = ctx.procs.wait(pid, TIMEOUT)?;
    if !e.success() {
        return Err(ctx.describe_failure("bench-floor", "floor", &e));
    }
    ctx.rec.exit(S, kind, "run", &e);
    Ok(())
}

/// `create --bundle B --pid-file F ID`; returns the init's pid.
fn create(ctx: &mut Ctx, rt: &Rt, bundle: &Path, id: &str, op: Option<&str>) -> Result<i32> {
    let pidfile = ctx.dir.join("io").join(format!("{}-{id}.pid", rt.name));
    let _ = std::fs::remove_file(&pidfile);
    let b = bundle.to_string_lossy().into_owned();
    let pf = pidfile.to_string_lossy().into_owned();
    let e = ctx.run_rt(rt, &["create", "--bundle", &b, "--pid-file", &pf, id], "create")?;
    let pid = super::procs::read_pid_file(&pidfile).ok_or_else(|| format!("{} create wrote no pid file", rt.name))?;
    ctx.procs.forget(pid);
    if let Some(op) = op {
        ctx.rec.exit(S, &rt.name, op, &e);
        // The init waits on the exec fifo: its memory and the CPU it spent setting up.
        if let Some([rss, pss, anon, file]) = super::procs::smaps_rollup(pid) {
            ctx.rec.push(S, &rt.name, "init.rss_kb", rss);
            ctx.rec.push(S, &rt.name, "init.pss_kb", pss);
            ctx.rec.push(S, &rt.name, "init.pss_anon_kb", anon);
            ctx.rec.push(S, &rt.name, "init.pss_file_kb", file);
        }
        if let Some(cpu) = super::procs::sched_cpu_ms(pid) {
            ctx.rec.push(S, &rt.name, "init.setup_cpu_ms", cpu);
            ctx.rec.push(S, &rt.name, "create_total.cpu_ms", cpu + e.cpu_ms());
        }
    }
    Ok(pid)
}

fn container_steps(ctx: &mut Ctx, rt: &Rt, round: usize) -> Result<()> {
    let b = ctx.bundle(&format!("{}-a", rt.name), &["true"])?;
    let id = format!("a-{round}");
    let init = create(ctx, rt, &b, &id, Some("create"))?;
    let e = ctx.run_rt(rt, &["state", &id], "state")?;
    if round == 0 {
        let out = std::fs::read_to_string(ctx.io_paths("state").0).unwrap_or_default();
        if !out.contains("\"created\"") {
            return Err(format!("{} state after create does not say created: {out}", rt.name));
        }
    }
    ctx.rec.exit(S, &rt.name, "state", &e);
    let e = ctx.run_rt(rt, &["start", &id], "start")?;
    ctx.rec.exit(S, &rt.name, "start", &e);
    let x = ctx.procs.wait(init, TIMEOUT)?;
    if !x.success() {
        return Err(format!("{}: the container's /bin/true ended with {}", rt.name, x.describe()));
    }
    ctx.rec.push(S, &rt.name, "init.total_cpu_ms", x.cpu_ms());
    let e = ctx.run_rt(rt, &["delete", &id], "delete")?;
    ctx.rec.exit(S, &rt.name, "delete", &e);

    let b = ctx.bundle(&format!("{}-b", rt.name), &["true"])?;
    let id = format!("b-{round}");
    let init = create(ctx, rt, &b, &id, None)?;
    let e = ctx.run_rt(rt, &["kill", &id, "KILL"], "kill")?;
    ctx.rec.exit(S, &rt.name, "kill", &e);
    ctx.procs.wait(init, TIMEOUT)?;
    let e = ctx.run_rt(rt, &["delete", &id], "delete")?;
    ctx.rec.exit(S, &rt.name, "delete_killed", &e);
    Ok(())
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    let rts = ctx.rts.clone();
    let floor_ok = ctx.opts.floor.exists();
    if !floor_ok {
        ctx.notes.push(format!("{} is missing: no floor (cargo build --release -p berth-integration)", ctx.opts.floor.display()));
    }
    // Subjects of the `run` step: the runtimes, then the floors.
    #[derive(Clone)]
    enum Subj {
        Rt(Rt),
        Floor(&'static str),
        Hybrid(Rt),
    }
    let mut subjects: Vec<Subj> = rts.iter().cloned().map(Subj::Rt).collect();
    if floor_ok {
        for k in ["floor", "floor+", "floor+sj"] {
            subjects.push(Subj::Floor(k));
        }
    }
    if ctx.host_ns.is_some() {
        subjects.extend(rts.iter().filter(|r| r.name != "crun").cloned().map(Subj::Hybrid));
    }
    // One warm-up round, not recorded: page cache, first cgroup parent creation.
    for rt in &rts {
        let mut scratch = std::mem::take(&mut ctx.rec);
        let r = run_step(ctx, rt, 0).and_then(|_| container_steps(ctx, rt, 0));
        std::mem::swap(&mut scratch, &mut ctx.rec);
        r?;
    }
    let n = ctx.opts.rounds;
    for round in 0..n {
        eprint!("\rbench: lifecycle round {}/{n}   ", round + 1);
        for s in rotated(&subjects, round) {
            match s {
                Subj::Rt(rt) => run_step(ctx, &rt, round)?,
                Subj::Floor(kind) => floor_step(ctx, kind)?,
                Subj::Hybrid(rt) => run_hybrid(ctx, &rt, round)?,
            }
        }
        for rt in rotated(&rts, round) {
            container_steps(ctx, &rt, round)?;
        }
        ctx.procs.forget_unclaimed();
    }
    eprintln!();
    Ok(())
}
