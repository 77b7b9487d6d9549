//! One shim per running container, recorded under section "shims", subject
//! "<shim>+<runtime>" (berth-shim and conmon, each over every runtime that works with it).
//! Both are started the way their engines start them and left to run `<runtime> create`
//! only; the bench then runs `<runtime> start` itself (conmon never starts; berth-shim is
//! run without `--start` for the same work). Per round:
//!
//! - one shim: `launch_ms` (from spawning the shim until the container is created: the
//!   caller returned and the pid file exists), then after 300 ms idle the shim's
//!   `rss_kb`, `pss_kb`, `pss_anon_kb`, `pss_file_kb` (smaps_rollup) and `own_cpu_ms`
//!   (schedstat: its own CPU so far, not its children's);
//! - then 9 more: `pss_kb_of_10` / `rss_kb_of_10`, the mean over the 10 shims;
//! - teardown: `<runtime> kill ID KILL`, the shim's own exit (it must write the exit
//!   status 137), `<runtime> delete ID`.
//!
//! conmon's arguments are podman's (see /work/shared/reference/engine-runtime-calls.txt)
//! minus the exit command, plus `--socket-dir-path` (its default, /var/run/crio, may not
//! exist) and `--runtime-arg --root --runtime-arg ROOT`.

use super::{Ctx, Result, Rt, TIMEOUT};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const S: &str = "shims";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    BerthShim,
    Conmon,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::BerthShim => "berth-shim",
            Kind::Conmon => "conmon",
        }
    }
}

struct Launched {
    id: String,
    shim_pid: i32,
    exit_file: PathBuf,
}

fn launch(ctx: &mut Ctx, kind: Kind, rt: &Rt, n: usize) -> Result<Launched> {
    let subject = format!("{}+{}", kind.name(), rt.name);
    let id = format!("{}{n}", if kind == Kind::BerthShim { "bs" } else { "cm" });
    let bundle = ctx.bundle(&format!("{}-{}-{id}", kind.name(), rt.name), &["sleep", "1000000"])?;
    let d = ctx.dir.join("shims").join(format!("{subject}-{id}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("exits")).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    std::fs::create_dir_all(d.join("sock")).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (pidfile, shim_pidfile, log) = (d.join("pid"), d.join("shim.pid"), d.join("ctr.log"));
    let (bin, args, exit_file): (PathBuf, Vec<String>, PathBuf) = match kind {
        Kind::BerthShim => (
            ctx.opts.berth_shim.clone(),
            vec![
                "--id".into(),
                id.clone(),
                "--bundle".into(),
                s(&bundle),
                "--root".into(),
                s(&rt.root),
                "--runtime".into(),
                s(&rt.bin),
                "--log-path".into(),
                s(&log),
                "--exit-file".into(),
                s(&d.join("exit")),
                "--pid-file".into(),
                s(&pidfile),
                "--shim-pid-file".into(),
                s(&shim_pidfile),
            ],
            d.join("exit"),
        ),
        Kind::Conmon => (
            ctx.opts.conmon.clone(),
            vec![
                "--api-version".into(),
                "1".into(),
                "-c".into(),
                id.clone(),
                "-u".into(),
                id.clone(),
                "-r".into(),
                s(&rt.bin),
                "-b".into(),
                s(&bundle),
                "-p".into(),
                s(&pidfile),
                "-n".into(),
                id.clone(),
                "--exit-dir".into(),
                s(&d.join("exits")),
                "-l".into(),
                format!("k8s-file:{}", s(&log)),
                "--conmon-pidfile".into(),
                s(&shim_pidfile),
                "--log-level".into(),
                "warning".into(),
                "--socket-dir-path".into(),
                s(&d.join("sock")),
                "--runtime-arg".into(),
                "--root".into(),
                "--runtime-arg".into(),
                s(&rt.root),
            ],
            d.join("exits").join(&id),
        ),
    };
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let slot = format!("shim-{n}");
    let mut cmd = ctx.command(&bin, None, &a, &slot, false)?;
    let t0 = Instant::now();
    let caller = ctx.procs.spawn(&mut cmd)?;
    let e = ctx.procs.wait(caller, TIMEOUT)?;
    if !e.success() {
        return Err(ctx.describe_failure(&format!("{subject} launch"), &slot, &e));
    }
    let started = (|| -> Result<(f64, i32)> {
        ctx.procs.poll_until(Duration::from_secs(20), &format!("{subject}: the container's pid file"), || super::procs::read_pid_file(&pidfile).is_some())?;
        let launch_ms = t0.elapsed().as_secs_f64() * 1e3;
        let init = super::procs::read_pid_file(&pidfile).ok_or_else(|| format!("{subject}: bad pid file"))?;
        ctx.procs.forget(init);
        let shim_pid = super::procs::read_pid_file(&shim_pidfile).ok_or_else(|| format!("{subject}: no shim pid file"))?;
        ctx.procs.forget(shim_pid);
        ctx.run_rt(rt, &["start", &id], "shim-start")?;
        Ok((launch_ms, shim_pid))
    })();
    let (launch_ms, shim_pid) = match started {
        Ok(x) => x,
        Err(e) => {
            // Leave nothing behind for the next attempt: the container (if any), and
            // with it the shim.
            let _ = ctx.run_rt(rt, &["delete", "--force", &id], "shim-delete");
            if let Some(p) = super::procs::read_pid_file(&shim_pidfile) {
                let _ = ctx.procs.wait(p, Duration::from_secs(10));
            }
            return Err(e);
        }
    };
    if n == 0 {
        ctx.rec.push(S, &subject, "launch_ms", launch_ms);
    }
    Ok(Launched { id, shim_pid, exit_file })
}

fn teardown(ctx: &mut Ctx, rt: &Rt, l: &Launched, subject: &str) -> Result<()> {
    ctx.run_rt(rt, &["kill", &l.id, "KILL"], "shim-kill")?;
    ctx.procs.wait(l.shim_pid, TIMEOUT).map_err(|e| format!("{subject}: the shim did not exit after its container: {e}"))?;
    let status = std::fs::read_to_string(&l.exit_file).unwrap_or_default();
    if status.trim() != "137" {
        return Err(format!("{subject}: exit file {} holds {status:?}, not 137", l.exit_file.display()));
    }
    ctx.run_rt(rt, &["delete", &l.id], "shim-delete")?;
    Ok(())
}

fn one_round(ctx: &mut Ctx, kind: Kind, rt: &Rt) -> Result<()> {
    let subject = format!("{}+{}", kind.name(), rt.name);
    let mut all = vec![launch(ctx, kind, rt, 0)?];
    let r = (|| -> Result<()> {
        ctx.procs.sleep(Duration::from_millis(300))?;
        let pid = all[0].shim_pid;
        let [rss, pss, anon, file] = super::procs::smaps_rollup(pid).ok_or_else(|| format!("{subject}: no smaps_rollup for the shim"))?;
        ctx.rec.push(S, &subject, "rss_kb", rss);
        ctx.rec.push(S, &subject, "pss_kb", pss);
        ctx.rec.push(S, &subject, "pss_anon_kb", anon);
        ctx.rec.push(S, &subject, "pss_file_kb", file);
        if let Some(c) = super::procs::sched_cpu_ms(pid) {
            ctx.rec.push(S, &subject, "own_cpu_ms", c);
        }
        for n in 1..10 {
            all.push(launch(ctx, kind, rt, n)?);
        }
        ctx.procs.sleep(Duration::from_millis(300))?;
        let (mut rs, mut ps) = (0.0, 0.0);
        for l in &all {
            let [rss, pss, ..] = super::procs::smaps_rollup(l.shim_pid).ok_or_else(|| format!("{subject}: a shim is gone"))?;
            rs += rss;
            ps += pss;
        }
        ctx.rec.push(S, &subject, "rss_kb_of_10", rs / all.len() as f64);
        ctx.rec.push(S, &subject, "pss_kb_of_10", ps / all.len() as f64);
        Ok(())
    })();
    let mut first_err = r.err();
    for l in &all {
        if let Err(e) = teardown(ctx, rt, l, &subject) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    let mut kinds = Vec::new();
    for (k, bin) in [(Kind::BerthShim, ctx.opts.berth_shim.clone()), (Kind::Conmon, ctx.opts.conmon.clone())] {
        if bin.exists() {
            kinds.push(k);
        } else {
            ctx.notes.push(format!("{} ({}) is missing: not measured", k.name(), bin.display()));
        }
    }
    let mut pairs: Vec<(Kind, Rt)> = Vec::new();
    for rt in ctx.rts.clone() {
        for &k in &kinds {
            // A trial round decides whether this pair works at all (not recorded).
            let mut scratch = std::mem::take(&mut ctx.rec);
            let r = one_round(ctx, k, &rt);
            std::mem::swap(&mut scratch, &mut ctx.rec);
            match r {
                Ok(()) => pairs.push((k, rt.clone())),
                Err(e) => {
                    if super::cleanup::interrupted() {
                        return Err(e);
                    }
                    let first = e.lines().take(3).collect::<Vec<_>>().join(" / ");
                    ctx.notes.push(format!("{} with {}: not measured: {first}", k.name(), rt.name));
                    ctx.procs.forget_unclaimed();
                }
            }
        }
    }
    let rounds = ctx.opts.shim_rounds;
    for round in 0..rounds {
        eprint!("\rbench: shims round {}/{rounds}   ", round + 1);
        for (k, rt) in super::rotated(&pairs, round) {
            one_round(ctx, k, &rt)?;
        }
        ctx.procs.forget_unclaimed();
    }
    eprintln!();
    Ok(())
}
