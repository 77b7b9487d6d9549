//! berth-build killed, and pruned under: a SIGKILL at any moment of a build ends every
//! process of it within seconds (shims, runtimes, the RUN's container) and leaves no
//! mount; what it leaves in the store (temp dirs, its containers' state and cgroups) is
//! taken by the next build or by `prune`, and the store still builds. A build or a prune
//! beside a running build leaves that build alone; prune reports the space it frees.
//!
//! The CI sizes keep this suite around a minute on two cores; `BERTH_SOAK=1` kills ten
//! times as often. `BERTH_FAULTS_SEED=N` repeats a run's kill moments (each run prints
//! its seed).

use berth_integration::builder_support::{builder_bin, Bt, Out};
use berth_integration::{host, procs};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_integration::soak::{sized, Rng};

/// A berth-build command running in the background, its stderr in a file. Killed (and
/// reaped) on drop if it was not waited for, so a failing test leaves no build running.
struct Bg {
    child: Option<Child>,
    /// Once reaped.
    status: Option<ExitStatus>,
    err: PathBuf,
    started: Instant,
}

impl Bg {
    fn start(b: &Bt, args: &[&str], name: &str) -> Bg {
        let err = b.path(&format!("{name}.err"));
        let mut cmd = Command::new(builder_bin());
        cmd.arg("--store").arg(&b.store).args(args).current_dir(&b.t.dir);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&err).expect("stderr file"));
        let child = procs::spawn(&mut cmd).expect("spawn berth-build");
        Bg { child: Some(child), status: None, err, started: Instant::now() }
    }

    fn build(b: &Bt, ctx: &Path, name: &str) -> Bg {
        Bg::start(b, &["build", "--progress", "plain", "--no-cache", ctx.to_str().unwrap()], name)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Whether the RUN's command printed `word` (its own output line, not the step's).
    fn printed(&self, word: &str) -> bool {
        self.stderr().lines().any(|l| l.trim_end().ends_with(&format!(" {word}")) && !l.contains("RUN"))
    }

    #[track_caller]
    fn wait_printed(&mut self, word: &str) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.printed(word) {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berth-build ended ({s}) before its RUN printed {word:?}:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "the RUN did not print {word:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(2));
        }
        self.started.elapsed()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.as_mut().unwrap().try_wait().unwrap();
            if self.status.is_some() {
                procs::untrack(self.child.take().unwrap().id());
            }
        }
        self.status
    }

    #[track_caller]
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            assert!(Instant::now() < deadline, "berth-build did not end within {limit:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(mut self) -> ExitStatus {
        procs::signal(self.pid(), libc::SIGKILL);
        let mut c = self.child.take().unwrap();
        let s = c.wait().expect("wait for berth-build");
        procs::untrack(c.id());
        s
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            procs::untrack(c.id());
        }
    }
}

/// The entries of the store's tmp/.
fn tmp_entries(b: &Bt) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(b.store.join("tmp")).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// The container-id part of the builds' work dirs in tmp/ (`build.<id>`: their
/// containers are `bb-<id>-<n>`, and so are their cgroups).
fn build_ids(b: &Bt) -> Vec<String> {
    tmp_entries(b).iter().filter_map(|n| n.strip_prefix("build.")).map(String::from).collect()
}

/// Cgroup directories, in any hierarchy, of the containers of the build `id`.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    host::cgroup_dirs_named(&format!("bb-{id}-"))
}

/// Live processes of a build anywhere: by the store path or the RUN's unique sleep in
/// their command line.
fn processes_of(b: &Bt, token: &str) -> Vec<String> {
    let store = b.store.to_string_lossy().into_owned();
    procs::all_pids()
        .into_iter()
        .filter(|&p| procs::alive(p))
        .filter_map(|p| procs::cmdline(p).filter(|c| c.contains(&store) || c.contains(token)).map(|c| format!("{p}: {c}")))
        .collect()
}

/// Polls until no process of the build is left, nor any process below this (exclusive)
/// test, for up to `limit`.
#[track_caller]
fn assert_no_process_within(b: &Bt, token: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut left = processes_of(b, token);
        left.extend(procs::descendants().into_iter().map(|(p, c)| format!("{p}: {c} (below the test)")));
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes of the killed build still alive after {limit:?}: {left:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_of_a_build_at_any_moment_leaves_nothing_once_the_next_build_or_prune_ran() {
    let b = Bt::exclusive("bldf-kill");
    let mut rng = Rng::new("bldf-kill");
    let token = "sleep 6071";
    let df = format!("FROM busybox\nCOPY f /f\nRUN echo one > /one && cat /f > /two\nRUN echo started; {token}\n");
    let ctx = b.context("ctx", &[("Dockerfile", &df), ("f", "data\n")]);
    let quick = b.context("quick", &[("Dockerfile", "FROM busybox\nRUN echo quick > /q\n")]);
    let n = sized(16, 160);
    // How long the build takes to reach its sleeping RUN: kill moments are drawn over it.
    let mut whole = Duration::from_millis(300);
    let (mut mid_run, mut with_cgroups) = (0, 0);
    for i in 0..n {
        let mut bg = Bg::build(&b, &ctx, &format!("kill{i}"));
        // Every fourth kill waits for the RUN's command; the others come at any moment.
        let at = if i % 4 == 0 {
            whole = bg.wait_printed("started");
            std::thread::sleep(Duration::from_millis(rng.below(200)));
            mid_run += 1;
            None
        } else {
            let d = Duration::from_micros(rng.below(whole.as_micros() as u64 * 5 / 4));
            std::thread::sleep(d.saturating_sub(bg.started.elapsed()));
            Some(d)
        };
        let status = bg.kill();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "kill {i} at {at:?}: berth-build was not killed by the SIGKILL");
        // The kernel ends the build's PID namespace: everything in it is gone at once.
        assert_no_process_within(&b, token, Duration::from_secs(5));
        let mounts = host::mounts_under(&b.t.dir);
        assert!(mounts.is_empty(), "kill {i} at {at:?}: mounts left: {mounts:?}");

        let ids = build_ids(&b);
        if ids.iter().any(|id| !cgroups_of(id).is_empty()) {
            with_cgroups += 1;
        }
        let tmp_before = tmp_entries(&b);
        let (what, out): (&str, Out) = if i % 2 == 0 { ("the next build", b.build(&quick, &["--no-cache"])) } else { ("prune", b.bb(&["prune"])) };
        out.ok();
        if what == "the next build" && !tmp_before.is_empty() {
            assert!(
                out.stderr.contains("removed what interrupted builds left"),
                "kill {i}: left {tmp_before:?}, and the build said nothing\n{}",
                out.describe()
            );
        }
        let tmp = tmp_entries(&b);
        assert!(tmp.is_empty(), "kill {i} at {at:?}: after {what}, left in the store's tmp/: {tmp:?} (before: {tmp_before:?})");
        for id in &ids {
            let cg = cgroups_of(id);
            assert!(cg.is_empty(), "kill {i} at {at:?}: after {what}, cgroups of the killed build's containers: {cg:?}");
        }
    }
    eprintln!("bldf-kill: {n} kills, {mid_run} while the RUN ran, {with_cgroups} left cgroups to reclaim");
    assert!(with_cgroups >= mid_run, "a kill while the RUN ran left no cgroup: the cgroup checks mean nothing");
    // The store still builds, and the step's layer still comes out right.
    let out = b.path("out");
    b.build(&quick, &["--output", &format!("type=local,dest={}", out.display())]).ok();
    assert_eq!(std::fs::read_to_string(out.join("q")).unwrap(), "quick\n");
    b.assert_clean();
}

#[test]
fn a_build_or_prune_beside_a_running_build_leaves_it_alone() {
    let b = Bt::new("bldf-beside");
    let ctx = b.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo started; sleep 5\nRUN echo after > /after\n")]);
    let other = b.context("other", &[("Dockerfile", "FROM busybox\nRUN echo other > /o\n")]);
    let mut a = Bg::start(&b, &["build", "--progress", "plain", "-t", "running:1", ctx.to_str().unwrap()], "a");
    a.wait_printed("started");
    let ids = build_ids(&b);
    assert_eq!(ids.len(), 1, "one build running: {:?}", tmp_entries(&b));
    let work = b.store.join("tmp").join(format!("build.{}", ids[0]));
    let state = work.join("state");
    let containers: Vec<PathBuf> = std::fs::read_dir(&state).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(containers.len(), 1, "the RUN's container in {}", state.display());
    let running_tmp = tmp_entries(&b);

    // A second build cleans tmp/ of dead builds only.
    let o = b.build(&other, &[]);
    o.ok();
    assert!(!o.stderr.contains("removed what interrupted builds left"), "{}", o.describe());
    assert!(containers[0].join("state.json").exists(), "the second build took the running build's container state");
    assert!(!cgroups_of(&ids[0]).is_empty(), "the running build's container lost its cgroups");
    assert_eq!(tmp_entries(&b), running_tmp, "the second build changed the running build's temp entries");

    // Prune waits for the running build (it holds its lease) and takes nothing of it.
    let mut p = Bg::start(&b, &["prune"], "prune");
    let status = loop {
        if let Some(s) = a.try_wait() {
            break s;
        }
        assert!(p.try_wait().is_none(), "prune ended while the build ran:\n{}", p.stderr());
        if !work.is_dir() {
            // Only the build itself removes it, as it ends.
            let s = a.wait(Duration::from_secs(10));
            break s;
        }
        assert!(a.started.elapsed() < Duration::from_secs(120), "the build did not end:\n{}", a.stderr());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the build failed beside prune:\n{}", a.stderr());
    assert!(p.wait(Duration::from_secs(60)).success(), "prune failed:\n{}", p.stderr());
    b.inspect("running:1");
    b.assert_clean();
}

/// The byte count a prune printed (`... : 12.3MB reclaimed`), and its rounding.
fn reclaimed(out: &Out) -> (u64, u64) {
    let word = out.stdout.split(": ").last().and_then(|s| s.strip_suffix(" reclaimed\n")).unwrap_or_else(|| panic!("no byte count in\n{}", out.describe()));
    let (num, unit) = word.split_at(word.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(word.len()));
    let scale: u64 = match unit {
        "B" => 1,
        "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => panic!("unit {u:?} in {word:?}"),
    };
    let v: f64 = num.parse().unwrap_or_else(|e| panic!("{num:?}: {e}"));
    ((v * scale as f64) as u64, if scale == 1 { 0 } else { scale / 10 })
}

/// Allocated bytes under `dir`, as du counts them.
fn du(dir: &Path) -> u64 {
    let o = procs::output(Command::new("du").arg("-sx").arg("--block-size=1").arg(dir)).expect("du");
    let s = String::from_utf8_lossy(&o.stdout);
    s.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("du printed {s:?}"))
}

#[track_caller]
fn assert_prune_reports_what_du_sees(b: &Bt, args: &[&str], at_least: u64) -> Out {
    let before = du(&b.store);
    let out = b.bb(args);
    out.ok();
    let freed = before.saturating_sub(du(&b.store));
    let (said, rounding) = reclaimed(&out);
    assert!(freed >= at_least, "{args:?} freed only {freed} bytes\n{}", out.describe());
    // The printed figure is rounded; a few directory blocks may differ.
    let slack = rounding + freed / 50 + 64 * 1024;
    assert!(said.abs_diff(freed) <= slack, "{args:?} said {said} bytes, du saw {freed} freed\n{}", out.describe());
    out
}

#[test]
fn prune_reports_the_space_it_frees_also_after_a_killed_build() {
    let b = Bt::new("bldf-bytes");
    // A finished build: a cache mount and a layer that only the build cache keeps.
    let df = "FROM busybox\nRUN --mount=type=cache,target=/c,id=big dd if=/dev/urandom of=/c/f bs=1M count=3\nRUN dd if=/dev/urandom of=/layer bs=1M count=5\n";
    let done = b.context("done", &[("Dockerfile", df)]);
    b.build(&done, &[]).ok();
    // A killed one: its step's upper dir (8 MB) and its container stay in tmp/.
    let token = "sleep 6073";
    let ctx = b.context("killed", &[("Dockerfile", &format!("FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1M count=8 && echo started && {token}\n"))]);
    let mut bg = Bg::build(&b, &ctx, "killed");
    bg.wait_printed("started");
    bg.kill();
    let ids = build_ids(&b);
    assert_eq!(ids.len(), 1, "{:?}", tmp_entries(&b));
    assert!(!cgroups_of(&ids[0]).is_empty(), "the killed build's container has no cgroup: the check below means nothing");

    let out = assert_prune_reports_what_du_sees(&b, &["prune"], 8 << 20);
    assert!(out.stdout.contains(" 1 containers of interrupted builds"), "{}", out.describe());
    assert!(tmp_entries(&b).is_empty(), "{:?}", tmp_entries(&b));
    assert!(cgroups_of(&ids[0]).is_empty(), "{:?}", cgroups_of(&ids[0]));
    let processes = processes_of(&b, token);
    assert!(processes.is_empty(), "{processes:?}");

    // The cache, its layer and blob, and the cache mount.
    assert_prune_reports_what_du_sees(&b, &["prune", "--cache"], 8 << 20);
    assert!(!b.store.join("cache-mounts").exists());
    b.build(&done, &[]).ok();
    b.assert_clean();
}
