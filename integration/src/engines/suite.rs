//! Running an engine's scenarios with one runtime: each scenario's panic is caught and
//! recorded, the engine's containers are removed after each one, a table is printed (and
//! written to target/engine-e2e/), and the `#[test]` fails at the end if any scenario
//! failed. When both runtimes of an engine have run in this binary, a side-by-side table
//! shows which failures runc shares (the machine's) and which are berth's alone.

use super::cgroup::Driver;
use super::wrapper::{Call, Wrapper};
use super::RuntimeUnderTest;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an engine offers the runner.
pub trait Engine {
    fn wrapper(&self) -> &Wrapper;
    /// Removes whatever the scenario left (containers, tasks), so that the next one
    /// starts clean. Must not panic.
    fn after_scenario(&self) {}
    /// The daemons' logs (name, path): a failure report quotes the errors they logged
    /// during the scenario.
    fn daemon_logs(&self) -> Vec<(&'static str, PathBuf)> {
        Vec::new()
    }
    /// The work dir, which is replaced by `<S>` in the call summary.
    fn work_dir(&self) -> PathBuf;
}

/// Panic payload of a scenario that does not apply here (with why).
pub struct Skip(pub String);

/// Ends the scenario as skipped.
pub fn skip(why: &str) -> ! {
    std::panic::panic_any(Skip(why.to_string()))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    pub verdict: Verdict,
    pub took: Duration,
    /// The runtime calls that exited non-zero during the scenario.
    pub failed_calls: Vec<Call>,
    /// Every runtime call of the scenario (reported when it failed but no call did).
    pub calls: Vec<Call>,
}

pub type Scenario<E> = (&'static str, fn(&E));

static RESULTS: Mutex<BTreeMap<String, BTreeMap<String, Vec<Outcome>>>> = Mutex::new(BTreeMap::new());
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// What each engine+runtime's teardown could not do cleanly, keyed `engine/rt`.
static TEARDOWN: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

/// Records (and prints) what an engine's teardown found wrong: left containers, state,
/// cgroups or units, a slice systemd would not stop. [`timed`] fails the suite on them.
pub fn teardown_problems(engine: &str, rt: &str, problems: Vec<String>) {
    if problems.is_empty() {
        return;
    }
    eprintln!("berth-e2e: {engine}/{rt} teardown:\n  {}", problems.join("\n  "));
    TEARDOWN.lock().unwrap_or_else(|e| e.into_inner()).entry(format!("{engine}/{rt}")).or_default().extend(problems);
}

/// Runs one engine's suite with one runtime (`f`: setup, [`run`], and the teardown when
/// the engine is dropped), then reports how long all of it took (printed, and added to
/// the report file) and fails if the teardown found problems.
pub fn timed(engine_name: &str, rt: &RuntimeUnderTest, f: impl FnOnce()) {
    // Before the engine is set up: a wrong lane fails at once.
    check_lane();
    let t0 = Instant::now();
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    let line = format!("  {engine_name} with {}: the whole suite (setup, scenarios, teardown) took {:.1}s\n", rt.name, t0.elapsed().as_secs_f64());
    eprint!("{line}");
    let report = report_dir().join(format!("{engine_name}-{}.txt", rt.name));
    // Under the table's totals, above the list of calls.
    if let Ok(text) = std::fs::read_to_string(&report) {
        let at = text.find(" skipped, scenarios ").and_then(|i| text[i..].find('\n').map(|j| i + j + 1)).unwrap_or(text.len());
        let _ = std::fs::write(&report, format!("{}{line}{}", &text[..at], &text[at..]));
    }
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
    if let Some(problems) = TEARDOWN.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{engine_name}/{}", rt.name)) {
        panic!("{engine_name} with {}: the teardown found:\n  {}", rt.name, problems.join("\n  "));
    }
}

pub fn note_skipped(engine: &str, why: &str) {
    SKIPPED.lock().unwrap_or_else(|e| e.into_inner()).push((engine.to_string(), why.to_string()));
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> Verdict {
    if let Some(s) = p.downcast_ref::<Skip>() {
        return Verdict::Skip(s.0.clone());
    }
    let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "panic".into());
    Verdict::Fail(msg)
}

/// The scenarios of the VM lane (`BERTH_E2E_LANE=v2-systemd`: pure cgroup v2, systemd as
/// PID 1, the engines on systemd's cgroup driver), by the names the three suites give
/// them: those whose cgroup handling changes under systemd (placement in a scope unit,
/// limits in files and unit properties, freezing, stats, exec joining the scope, scopes
/// going away on stop and rm), and the run basics. The rest behave the same under either
/// driver and stay in the host suites: the lane's time under TCG is limited.
pub const LANE_V2_SYSTEMD: &[&str] = &[
    // docker and podman
    "run_rm_exit_codes",
    "run_detached_logs",
    "exec",
    "pause_unpause",
    "stop",
    "rm_running",
    "memory_limit",
    "update_memory",
    "pids_limit",
    "cpus",
    "stats",
    "rm_leaves_nothing",
    // Real hosts of this kind have AppArmor on (the VM's Debian kernel does; this
    // repository's CI host does not), and engines give every container a profile.
    "apparmor",
    // criu works on the VM's kernel only.
    "checkpoint_restore",
    // containerd (memory_limit, cpus and rm_leaves_nothing as above)
    "run_exit_codes",
    "tasks_exec",
    "pause_resume",
    "kill_signal",
    "tasks_rm",
    "metrics",
];

/// The lane's scenario list, if `BERTH_E2E_LANE` names one.
fn lane() -> Option<&'static [&'static str]> {
    match std::env::var("BERTH_E2E_LANE").ok().filter(|v| !v.trim().is_empty()).as_deref() {
        None => None,
        Some("v2-systemd") => Some(LANE_V2_SYSTEMD),
        Some(other) => panic!("BERTH_E2E_LANE={other}: the lanes are v2-systemd"),
    }
}

/// A lane that means to test systemd's driver must not pass by testing cgroupfs.
#[track_caller]
fn check_lane() {
    if lane() == Some(LANE_V2_SYSTEMD) {
        assert_eq!(
            Driver::get(),
            Driver::Systemd,
            "BERTH_E2E_LANE=v2-systemd needs the systemd cgroup driver: systemd as PID 1 and pure cgroup v2 (or BERTH_E2E_CGROUP_DRIVER=systemd)"
        );
    }
}

fn selected(name: &str) -> bool {
    match std::env::var("BERTH_E2E_ONLY") {
        Ok(v) if !v.trim().is_empty() => v.split(',').any(|w| w.trim() == name),
        _ => lane().is_none_or(|l| l.contains(&name)),
    }
}

pub fn report_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::paths::workspace().join("target"));
    target.join("engine-e2e")
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.len() > 110 {
        format!("{}...", &l[..l.char_indices().take_while(|(i, _)| *i < 107).last().map(|(i, c)| i + c.len_utf8()).unwrap_or(0)])
    } else {
        l.to_string()
    }
}

/// Runs `scenarios` against `engine` (set up with `rt`); panics at the end if any failed.
pub fn run<E: Engine>(engine_name: &str, rt: &RuntimeUnderTest, engine: &E, scenarios: &[Scenario<E>]) {
    check_lane();
    let mut outcomes = Vec::new();
    let w = engine.wrapper();
    for (name, f) in scenarios {
        if !selected(name) {
            continue;
        }
        eprintln!("berth-e2e: {engine_name}/{}: {name} ...", rt.name);
        let mark = w.mark();
        let logs: Vec<(&str, PathBuf, u64)> = engine
            .daemon_logs()
            .into_iter()
            .map(|(n, p)| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (n, p, len)
            })
            .collect();
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(engine)));
        let took = t0.elapsed();
        let verdict = match r {
            Ok(()) => Verdict::Pass,
            Err(p) => panic_text(&*p),
        };
        engine.after_scenario();
        let calls = w.calls_since(mark);
        let failed_calls: Vec<Call> = calls.iter().filter(|c| c.exit != Some(0)).cloned().collect();
        let mut verdict = verdict;
        if let Verdict::Fail(m) = &mut verdict {
            for (name, path, from) in &logs {
                let errs = errors_since(path, *from);
                if !errs.is_empty() {
                    m.push_str(&format!("\n  {name} logged during the scenario:\n    {}", errs.join("\n    ")));
                }
            }
        }
        eprintln!(
            "berth-e2e: {engine_name}/{}: {name}: {} ({:.1}s)",
            rt.name,
            match &verdict {
                Verdict::Pass => "ok".to_string(),
                Verdict::Fail(m) => format!("FAILED: {}", first_line(m)),
                Verdict::Skip(m) => format!("skipped: {m}"),
            },
            took.as_secs_f64()
        );
        outcomes.push(Outcome { name, verdict, took, failed_calls, calls });
    }
    let text = render(engine_name, rt, engine, &outcomes);
    eprintln!("{text}");
    let _ = std::fs::create_dir_all(report_dir());
    let _ = std::fs::write(report_dir().join(format!("{engine_name}-{}.txt", rt.name)), &text);
    let failed: Vec<&str> = outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Fail(_))).map(|o| o.name).collect();
    {
        let mut all = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(engine_name.to_string()).or_default().insert(rt.name.to_string(), outcomes);
        if let Some(t) = side_by_side(engine_name, &all[engine_name]) {
            eprintln!("{t}");
            let _ = std::fs::write(report_dir().join(format!("{engine_name}.txt")), &t);
        }
    }
    if !failed.is_empty() {
        panic!("{engine_name} with {}: {} scenario(s) failed: {}", rt.name, failed.len(), failed.join(", "));
    }
}

fn render<E: Engine>(engine_name: &str, rt: &RuntimeUnderTest, engine: &E, outcomes: &[Outcome]) -> String {
    let mut s = format!("\n==== {engine_name} with {} ({}), cgroup driver {} ====\n", rt.name, rt.bin.display(), Driver::get().name());
    for o in outcomes {
        let (v, m) = match &o.verdict {
            Verdict::Pass => ("PASS", String::new()),
            Verdict::Fail(m) => ("FAIL", first_line(m)),
            Verdict::Skip(m) => ("SKIP", m.clone()),
        };
        s.push_str(&format!("  {v}  {:<28} {:>5.1}s  {m}\n", o.name, o.took.as_secs_f64()));
    }
    let n = |k: &str| outcomes.iter().filter(|o| matches!((&o.verdict, k), (Verdict::Pass, "p") | (Verdict::Fail(_), "f") | (Verdict::Skip(_), "s"))).count();
    let total: f64 = outcomes.iter().map(|o| o.took.as_secs_f64()).sum();
    s.push_str(&format!("  {} passed, {} failed, {} skipped, scenarios {total:.1}s\n", n("p"), n("f"), n("s")));
    for o in outcomes {
        if let Verdict::Fail(m) = &o.verdict {
            s.push_str(&format!("\n---- {engine_name}/{}: {} failed:\n{m}\n", rt.name, o.name));
            if o.failed_calls.is_empty() {
                s.push_str("  every runtime call in this scenario exited 0; they were:\n");
                for c in o.calls.iter().take(16) {
                    s.push_str(&format!("    {}\n", c.describe()));
                }
            } else {
                s.push_str("  runtime calls that failed in this scenario:\n");
                for c in &o.failed_calls {
                    s.push_str(&format!("    {}\n", c.describe()));
                }
            }
        }
    }
    // The distinct shapes of the calls the engine made (work dir and 64-hex ids elided).
    let dir = engine.work_dir().to_string_lossy().into_owned();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    for c in engine.wrapper().all_calls() {
        let mut a = format!("[{}] {}", c.caller, c.argv.replace(&dir, "<S>"));
        a = elide_hex(&a);
        *shapes.entry(a).or_default() += 1;
    }
    s.push_str(&format!("\n  runtime calls made by {engine_name} (count, [caller] argv):\n"));
    let mut v: Vec<(String, usize)> = shapes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (a, k) in v {
        s.push_str(&format!("  {k:>5} {a}\n"));
    }
    s
}

fn elide_hex(s: &str) -> String {
    let mut out = String::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let mut j = i;
        while j < b.len() && b[j].is_ascii_hexdigit() && !b[j].is_ascii_uppercase() {
            j += 1;
        }
        let mut k = i;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if j - i >= 32 {
            out.push_str("<ID>");
            i = j;
        } else if k - i >= 6 && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            out.push_str("<N>");
            i = k;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn side_by_side(engine: &str, by_rt: &BTreeMap<String, Vec<Outcome>>) -> Option<String> {
    let runc = by_rt.get("runc")?;
    let berth = by_rt.get("berth")?;
    let mut s = format!("\n==== {engine}: runc vs berth ====\n  {:<28} {:<6} {:<6} \n", "scenario", "runc", "berth");
    let short = |v: &Verdict| match v {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "FAIL",
        Verdict::Skip(_) => "skip",
    };
    let mut ours = Vec::new();
    let mut machine = Vec::new();
    for o in berth {
        let r = runc.iter().find(|x| x.name == o.name).map(|x| &x.verdict);
        let rv = r.map(short).unwrap_or("-");
        let note = match (r, &o.verdict) {
            (Some(Verdict::Pass), Verdict::Fail(_)) => {
                ours.push(o.name);
                "berth only"
            }
            (Some(Verdict::Fail(_)), Verdict::Fail(_)) => {
                machine.push(o.name);
                "both: the machine's?"
            }
            (Some(Verdict::Fail(_)), Verdict::Pass) => "runc only",
            _ => "",
        };
        s.push_str(&format!("  {:<28} {:<6} {:<6} {note}\n", o.name, rv, short(&o.verdict)));
    }
    s.push_str(&format!(
        "  berth-only failures: {}\n  shared with runc: {}\n",
        if ours.is_empty() { "none".into() } else { ours.join(", ") },
        if machine.is_empty() { "none".into() } else { machine.join(", ") }
    ));
    Some(s)
}

/// The error lines (`level=error`) a daemon wrote to `path` after byte `from`, the last 8.
fn errors_since(path: &std::path::Path, from: u64) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned();
    let errs: Vec<String> = text.lines().filter(|l| l.contains("level=error") || l.contains("level=fatal")).map(String::from).collect();
    errs[errs.len().saturating_sub(8)..].to_vec()
}
