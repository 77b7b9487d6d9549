//! Many containers, recorded under section "scale": N (default 100) `sleep` containers
//! per runtime, created and started one after another (`seq`) and 8 at a time (`par8`),
//! then killed (`kill ID KILL`, the init's exit awaited) and deleted, the same way.
//!
//! Per mode: `<mode>.create.*`, `<mode>.start.*`, `<mode>.kill.*`, `<mode>.delete.*`
//! (every command), `<mode>.create.wall_ms.first10` / `.last10` (the 1st-10th against
//! the (N-9)th-Nth create: does the cost grow with the number present?), the same per
//! decile (`.d0` .. `.d9`), and the totals `<mode>.up_total_ms` (all created and started)
//! and `<mode>.down_total_ms` (all killed and deleted). With N present (after `seq`):
//! `list.*` (`list --format json`, 5 times); with none: `list_empty.*`.

use super::procs::Exit;
use super::{rotated, Ctx, Result, Rt, TIMEOUT};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

const S: &str = "scale";

enum Step {
    Cmd(&'static str, Vec<String>),
    /// Wait for the init (from the pid file of the create step) to exit.
    AwaitInit,
}

struct Chain {
    idx: usize,
    steps: VecDeque<Step>,
    running: Option<(i32, &'static str)>,
    pidfile: PathBuf,
    init: Option<i32>,
}

/// Runs the chains, `conc` at a time; every command's Exit goes to `on_exit`.
fn run_chains(ctx: &mut Ctx, rt: &Rt, chains: Vec<Chain>, conc: usize, mut on_exit: impl FnMut(&mut Ctx, usize, &str, &Exit)) -> Result<f64> {
    let t0 = Instant::now();
    let mut pending: VecDeque<Chain> = chains.into();
    let mut active: Vec<Chain> = Vec::new();
    loop {
        while active.len() < conc {
            match pending.pop_front() {
                Some(c) => active.push(c),
                None => break,
            }
        }
        if active.is_empty() {
            break;
        }
        // Start what can start; finish init waits that are over.
        for c in active.iter_mut() {
            loop {
                if c.running.is_some() {
                    break;
                }
                match c.steps.front() {
                    None => break,
                    Some(Step::Cmd(label, args)) => {
                        let a: Vec<&str> = args.iter().map(String::as_str).collect();
                        let slot = format!("sc{}", c.idx);
                        let pid = ctx.spawn_rt(rt, &a, &slot)?;
                        c.running = Some((pid, label));
                        c.steps.pop_front();
                    }
                    Some(Step::AwaitInit) => {
                        let init = c.init.ok_or("scale: no init pid to wait for")?;
                        if ctx.procs.take(init).is_some() {
                            c.steps.pop_front();
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        active.retain(|c| c.running.is_some() || !c.steps.is_empty());
        if active.is_empty() {
            continue;
        }
        let mut pids: Vec<i32> = active.iter().filter_map(|c| c.running.map(|r| r.0)).collect();
        pids.extend(active.iter().filter(|c| c.running.is_none()).filter_map(|c| c.init));
        let e = ctx.procs.wait_any(&pids, TIMEOUT)?;
        let Some(c) = active.iter_mut().find(|c| c.running.map(|r| r.0) == Some(e.pid) || (c.running.is_none() && c.init == Some(e.pid))) else {
            continue;
        };
        if c.running.is_none() {
            // The init this chain waits for.
            c.steps.pop_front();
            continue;
        }
        let (_, label) = c.running.take().expect("running");
        if !e.success() {
            return Err(ctx.describe_failure(&format!("{} {label} (container {})", rt.name, c.idx), &format!("sc{}", c.idx), &e));
        }
        if label == "create" {
            let pid = super::procs::read_pid_file(&c.pidfile).ok_or_else(|| format!("{} create wrote no pid file", rt.name))?;
            ctx.procs.forget(pid);
            c.init = Some(pid);
        }
        on_exit(ctx, c.idx, label, &e);
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn id(i: usize) -> String {
    format!("s{i:03}")
}

fn mode(ctx: &mut Ctx, rt: &Rt, conc: usize, name: &str) -> Result<()> {
    let n = ctx.opts.scale;
    let mut up = Vec::new();
    for i in 0..n {
        let b = ctx.bundle(&format!("{}-{}", rt.name, id(i)), &["sleep", "1000000"])?;
        let pidfile = ctx.dir.join("io").join(format!("{}-{}.pid", rt.name, id(i)));
        let _ = std::fs::remove_file(&pidfile);
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let steps = VecDeque::from([
            Step::Cmd("create", args(&["create", "--bundle", &b.to_string_lossy(), "--pid-file", &pidfile.to_string_lossy(), &id(i)])),
            Step::Cmd("start", args(&["start", &id(i)])),
        ]);
        up.push(Chain { idx: i, steps, running: None, pidfile, init: None });
    }
    let rtname = rt.name.clone();
    let total = run_chains(ctx, rt, up, conc, |ctx, i, label, e| {
        ctx.rec.exit(S, &rtname, &format!("{name}.{label}"), e);
        for (part, ok) in [("first10", i < 10), ("last10", i + 10 >= n)] {
            if ok {
                ctx.rec.push(S, &rtname, &format!("{name}.{label}.wall_ms.{part}"), e.wall_ms());
                ctx.rec.push(S, &rtname, &format!("{name}.{label}.cpu_ms.{part}"), e.cpu_ms());
            }
        }
        ctx.rec.push(S, &rtname, &format!("{name}.{label}.wall_ms.d{}", i * 10 / n), e.wall_ms());
    })?;
    ctx.rec.push(S, &rt.name, &format!("{name}.up_total_ms"), total);
    if conc == 1 {
        for _ in 0..5 {
            let e = ctx.run_rt(rt, &["list", "--format", "json"], "list")?;
            ctx.rec.exit(S, &rt.name, "list", &e);
        }
        let out = std::fs::read_to_string(ctx.io_paths("list").0).unwrap_or_default();
        let listed = serde_json::from_str::<serde_json::Value>(out.trim()).ok().and_then(|v| v.as_array().map(|a| a.len())).unwrap_or(0);
        if listed != n {
            return Err(format!("{} list shows {listed} containers, not {n}", rt.name));
        }
    }
    let mut down = Vec::new();
    for i in 0..n {
        let steps =
            VecDeque::from([Step::Cmd("kill", vec!["kill".into(), id(i), "KILL".into()]), Step::AwaitInit, Step::Cmd("delete", vec!["delete".into(), id(i)])]);
        // The init's pid, from the pid file its create wrote.
        let pidfile = ctx.dir.join("io").join(format!("{}-{}.pid", rt.name, id(i)));
        let init = super::procs::read_pid_file(&pidfile).ok_or_else(|| format!("{}: no pid for container {i}", rt.name))?;
        down.push(Chain { idx: i, steps, running: None, pidfile, init: Some(init) });
    }
    let total = run_chains(ctx, rt, down, conc, |ctx, _i, label, e| {
        ctx.rec.exit(S, &rtname, &format!("{name}.{label}"), e);
    })?;
    ctx.rec.push(S, &rt.name, &format!("{name}.down_total_ms"), total);
    if conc == 1 {
        let e = ctx.run_rt(rt, &["list", "--format", "json"], "list")?;
        ctx.rec.exit(S, &rt.name, "list_empty", &e);
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    let rts = ctx.rts.clone();
    let rounds = ctx.opts.scale_rounds;
    for round in 0..rounds {
        for (conc, name) in [(1, "seq"), (8, "par8")] {
            for rt in rotated(&rts, round) {
                eprint!("\rbench: scale round {}/{rounds}: {name} {}      ", round + 1, rt.name);
                mode(ctx, &rt, conc, name)?;
                ctx.procs.forget_unclaimed();
            }
        }
    }
    eprintln!();
    Ok(())
}
