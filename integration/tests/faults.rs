//! Faults and hostile timing. Engines SIGKILL a runtime that takes too long, users press
//! Ctrl-C, supervisors die: after any of it the next command must find a clean,
//! consistent machine. `delete --force` removes everything an interrupted create made
//! (cgroup directories in every hierarchy, the init, the state directory, mounts), an
//! init whose create was interrupted does not outlive it, and nothing reports a
//! container as `created` before it is.
//!
//! The CI sizes keep this suite well under two minutes on two cores; `BERTH_SOAK=1` runs
//! ten times the kills and cycles and five times the parallel containers.
//! `BERTH_FAULTS_SEED=N` repeats a run's kill moments (each run prints its seed).
//!
//! These pin what berth guarantees beyond runc: runc 1.1 fails the kill tests (a create
//! killed half way leaves cgroup directories that nothing removes).

use berth_integration::shim_support::{self, ShimTest};
use berth_integration::*;
use std::path::Path;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

use berth_integration::soak::{sized, Rng};

/// A pause of 0-30 ms: from before the runtime has started to after create is done.
fn kill_moment(rng: &mut Rng) -> Duration {
    Duration::from_micros(rng.below(30_000))
}

/// A bundle whose create takes a while: `mounts` tmpfs mounts for the init to make.
fn slow_bundle(t: &Test, mounts: usize) -> Bundle {
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let mut list = b.config["mounts"].as_array().cloned().unwrap_or_default();
    for i in 0..mounts {
        list.push(json!({"destination": format!("/tmp/m{i}"), "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=4k"]}));
    }
    b.set("/mounts", Value::Array(list));
    b
}

/// How many of the slow bundle's mounts the process `pid` has (its mount namespace).
fn tmp_mounts(pid: i32) -> usize {
    host::mountinfo(&pid.to_string()).iter().filter(|m| m.mount_point.contains("/tmp/m")).count()
}

/// `state ID` as JSON, or None while the container does not exist.
fn state(t: &Test, id: &str) -> Option<Value> {
    let o = t.rt.cmd_opts(&["state", id], &Opts { timeout: Some(10 * SEC), ..Default::default() });
    if !o.success() {
        assert!(o.stderr.contains("does not exist"), "state failed otherwise than with 'does not exist'\n{}", o.describe());
        return None;
    }
    Some(serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state printed broken JSON ({e})\n{}", o.describe())))
}

/// Polls `state` while `cmd` (a create or run of a slow bundle) runs, until the init
/// exists and is still building the rootfs; returns its pid.
#[track_caller]
fn wait_for_init_mid_rootfs(t: &Test, id: &str, cmd: &mut Running, mounts: usize) -> i32 {
    let deadline = Instant::now() + 30 * SEC;
    loop {
        assert!(cmd.try_wait().is_none(), "{} finished before its init was seen building the rootfs: make the bundle slower", cmd.cmdline);
        if let Some(v) = state(t, id) {
            let pid = v["pid"].as_i64().unwrap_or(0) as i32;
            if v["status"] == "creating" && pid > 0 {
                let n = tmp_mounts(pid);
                if n < mounts {
                    return pid;
                }
            }
        }
        assert!(Instant::now() < deadline, "no init of {id} seen within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigkill_of_create_or_run_at_any_moment_then_delete_force_leaves_nothing() {
    let t = Test::exclusive("faults_kill");
    let before = t.snapshot();
    let mut rng = Rng::new("faults_kill");
    let n = sized(50, 500);
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    let dir = b.dir.to_string_lossy().into_owned();
    let mut leaks = Vec::new();
    // Kills that found create still running, and those after it had finished.
    let (mut mid_create, mut after_create) = (0, 0);
    for i in 0..n {
        let id = t.id(&format!("k{i}"));
        let cmd = if i % 2 == 0 { "create" } else { "run" };
        let mut r = t.rt.spawn(&[cmd, "--bundle", &dir, &id], &Opts::default());
        let moment = kill_moment(&mut rng);
        std::thread::sleep(moment);
        if cmd == "create" {
            if r.try_wait().is_some() {
                after_create += 1;
            } else {
                mid_create += 1;
            }
        }
        r.kill();
        let d = t.rt.delete_force(&id);
        if !d.success() {
            leaks.push(format!("{cmd} killed after {moment:?}: delete --force failed: {}", d.stderr.trim()));
        }
        let left = t.leftovers(&before, &id);
        if !left.is_empty() {
            leaks.push(format!("{cmd} {id} killed after {moment:?}: {left:?}"));
        }
    }
    eprintln!("faults_kill: {n} kills ({mid_create} during create, {after_create} after it, {} of run), {} left something", n / 2, leaks.len());
    assert!(leaks.is_empty(), "{} of {n} kills left something behind:\n{}", leaks.len(), leaks.join("\n"));
    assert!(mid_create > 0, "no kill landed while create ran: the moments do not exercise it");
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn state_and_list_say_creating_until_create_has_built_the_rootfs() {
    let t = Test::exclusive("faults_creating");
    let before = t.snapshot();
    let mounts = 3000;
    let b = slow_bundle(&t, mounts);
    b.write();
    let id = t.id("");
    let dir = b.dir.to_string_lossy().into_owned();
    let mut create = t.rt.spawn(&["create", "--bundle", &dir, &id], &Opts::default());
    let pid = wait_for_init_mid_rootfs(&t, &id, &mut create, mounts);
    // list does not wait for create either, and says the same.
    let listed = t.rt.list();
    let row = listed.iter().find(|c| c["id"] == id.as_str()).unwrap_or_else(|| panic!("list does not show {id}: {listed:?}"));
    assert_eq!(row["status"], "creating", "{row}");
    assert_eq!(row["pid"], pid, "{row}");
    // Every answer until create exits: creating, or created only with the rootfs whole.
    let mut creating = 0;
    while create.try_wait().is_none() {
        let v = state(&t, &id).expect("the container exists while create runs");
        match v["status"].as_str() {
            Some("creating") => creating += 1,
            Some("created") => {
                let n = tmp_mounts(pid);
                assert_eq!(n, mounts, "state said created while the init had made {n} of {mounts} mounts: {v}");
            }
            other => panic!("state during create said {other:?}: {v}"),
        }
    }
    assert!(creating > 0, "state never said creating while create ran");
    create.wait(SEC).ok();
    assert_eq!(t.rt.status(&id), "created");
    t.rt.delete(&id).ok();
    t.forget_ids();
    let left = t.leftovers(&before, &id);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn delete_force_ends_the_init_of_a_create_killed_while_it_built_the_rootfs() {
    let t = Test::exclusive("faults_slowinit");
    let before = t.snapshot();
    let mounts = 3000;
    let b = slow_bundle(&t, mounts);
    b.write();
    let id = t.id("");
    let dir = b.dir.to_string_lossy().into_owned();
    let mut create = t.rt.spawn(&["create", "--bundle", &dir, &id], &Opts::default());
    let init = wait_for_init_mid_rootfs(&t, &id, &mut create, mounts);
    create.kill();
    let d = t.rt.delete_force(&id);
    d.ok();
    // At once: when delete returns the init is gone (a zombie waiting for its reaper counts).
    assert!(!procs::alive(init), "the init {init} of the killed create still runs after delete --force returned");
    let left = t.leftovers(&before, &id);
    assert!(left.is_empty(), "{left:?}");
    assert!(state(&t, &id).is_none());
}

#[test]
fn an_init_does_not_outlive_a_create_killed_while_it_built_the_rootfs() {
    // Without any delete: the init is tied to its create until it is ready.
    let t = Test::exclusive("faults_orphan");
    let mounts = 3000;
    let b = slow_bundle(&t, mounts);
    b.write();
    let id = t.id("");
    let dir = b.dir.to_string_lossy().into_owned();
    let mut create = t.rt.spawn(&["create", "--bundle", &dir, &id], &Opts::default());
    let init = wait_for_init_mid_rootfs(&t, &id, &mut create, mounts);
    create.kill();
    wait_until(5 * SEC, "the init of the killed create to die", || !procs::alive(init));
    // What it made is on record: the container reads as stopped, and a plain delete removes it.
    assert_eq!(t.rt.status(&id), "stopped");
    t.rt.delete(&id).ok();
    assert!(host::cgroup_dirs_named(&id).is_empty(), "{:?}", host::cgroup_dirs_named(&id));
}

#[test]
fn sigterm_or_sigint_to_run_during_create_removes_the_container() {
    let t = Test::exclusive("faults_sigrun");
    let before = t.snapshot();
    let mounts = 3000;
    let b = slow_bundle(&t, mounts);
    b.write();
    let dir = b.dir.to_string_lossy().into_owned();
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let id = t.id(name);
        let mut run = t.rt.spawn(&["run", "--bundle", &dir, &id], &Opts::default());
        let init = wait_for_init_mid_rootfs(&t, &id, &mut run, mounts);
        procs::signal(run.pid(), sig);
        let o = run.wait(30 * SEC);
        assert_eq!(o.status.code(), Some(128 + sig), "{}", o.describe());
        o.stderr_has(&format!("interrupted by {name}"));
        assert!(!procs::alive(init), "the init {init} outlived the interrupted run");
        assert!(state(&t, &id).is_none(), "{id} still exists after its run was interrupted");
        let left = t.leftovers(&before, &id);
        assert!(left.is_empty(), "{name}: {left:?}");
    }
}

#[test]
fn signals_create_blocks_for_itself_still_reach_the_created_init() {
    // create keeps SIGTERM and SIGINT blocked to undo itself on one; its init must not
    // inherit that: TERM ends a created container at once, as it did before. (Without a
    // pid namespace of its own: the init of one ignores signals it has no handler for.)
    let t = Test::new("faults_termcreated");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let namespaces: Vec<Value> = b.config["linux"]["namespaces"].as_array().unwrap().iter().filter(|n| n["type"] != "pid").cloned().collect();
    b.set("/linux/namespaces", Value::Array(namespaces));
    for sig in ["TERM", "INT"] {
        let id = t.id(sig);
        t.rt.create(&id, &b).ok();
        t.rt.kill(&id, sig).ok();
        t.rt.wait_status(&id, "stopped", 10 * SEC);
    }
}

#[test]
fn create_start_kill_delete_cycles_leave_nothing() {
    let t = Test::exclusive("faults_cycles");
    let before = t.snapshot();
    let n = sized(100, 1000);
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let started = Instant::now();
    for i in 0..n {
        let id = t.id(&format!("c{i}"));
        t.rt.create(&id, &b).ok();
        t.rt.start(&id).ok();
        t.rt.kill(&id, "KILL").ok();
        t.rt.wait_status(&id, "stopped", 10 * SEC);
        t.rt.delete(&id).ok();
    }
    t.forget_ids();
    eprintln!("faults_cycles: {n} cycles in {:?}", started.elapsed());
    let left = t.leftovers(&before, &t.name);
    assert!(left.is_empty(), "after {n} cycles: {left:?}");
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn containers_created_and_deleted_in_parallel_leave_nothing() {
    let t = Test::exclusive("faults_parallel");
    let before = t.snapshot();
    let n = sized(20, 100);
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    let dir = b.dir.to_string_lossy().into_owned();
    let ids: Vec<String> = (0..n).map(|i| t.id(&format!("p{i}"))).collect();
    // All at once, sharing the default parent cgroup /berth, which the last delete removes.
    std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (t, dir) = (&t, &dir);
                s.spawn(move || {
                    let mut out = vec![t.rt.cmd(&["create", "--bundle", dir, id])];
                    if out[0].success() {
                        out.push(t.rt.cmd(&["start", id]));
                        out.push(t.rt.cmd(&["kill", id, "KILL"]));
                        out.push(t.rt.cmd(&["delete", "--force", id]));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            for o in h.join().expect("a worker panicked") {
                o.ok();
            }
        }
    });
    t.forget_ids();
    let left = t.leftovers(&before, &t.name);
    assert!(left.is_empty(), "after {n} parallel containers: {left:?}");
    assert!(t.rt.list_ids().is_empty());
}

/// Files in `dir`, for the leftover checks of the shim's temporary directory.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
}

/// Runs berth-shim to its return, as a child the harness tracks (its reaper thread
/// would otherwise race a plain wait for it), and reads the pids it wrote.
fn launch_shim(s: &mut ShimTest, cmd: &mut std::process::Command) -> std::process::Output {
    let out = procs::output(cmd).expect("run berth-shim");
    let read = |p: &Path| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<i32>().ok());
    s.shim_pid = read(&s.shim_pid_file);
    s.init_pid = read(&s.pid_file);
    out
}

/// The runtime with the shim test's --root, through the harness (tracked commands).
fn runtime_of(s: &ShimTest) -> Runtime {
    Runtime::new(s.runtime.clone(), s.root.clone(), s.dir.path().join("io"))
}

/// The command name of `pid` (`berth` for runtime commands, `berth:init` for a waiting init).
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

#[test]
fn a_killed_shim_leaves_its_container_running_and_delete_force_leaves_nothing_stale() {
    // Exclusive: the other tests here count every process below this test binary.
    let _t = Test::exclusive("faults_shimkill");
    let mut s = ShimTest::new("shimkill", &["sleep", "100"], false);
    let mut cmd = s.command(&["--start"]);
    let out = launch_shim(&mut s, &mut cmd);
    assert!(out.status.success(), "berth-shim: {}", String::from_utf8_lossy(&out.stderr));
    let (shim, init) = (s.shim_pid.expect("shim pid"), s.init_pid.expect("init pid"));
    assert!(s.attach.exists(), "the shim made no attach socket");
    procs::signal(shim, libc::SIGKILL);
    assert!(shim_support::wait_gone(shim, 10 * SEC), "the shim {shim} did not die");
    // The container does not depend on its shim being alive.
    let rt = runtime_of(&s);
    assert_eq!(rt.status(&s.id), "running");
    assert!(procs::alive(init));
    rt.delete_force(&s.id).ok();
    assert!(shim_support::wait_gone(init, 10 * SEC), "the init {init} survived delete --force");
    rt.cmd(&["state", &s.id]).failed().stderr_has("does not exist");
    if *flavor() == Flavor::Berth {
        assert!(!s.attach.exists(), "the dead shim's attach socket was left behind");
    } else {
        // Other runtimes know nothing of the shim's files: the socket stays.
        assert!(s.attach.exists());
    }
    assert!(!s.root.join(&s.id).exists(), "state directory left");
    s.shim_pid = None;
    s.assert_nothing_left();
}

#[test]
fn a_shim_killed_at_any_moment_of_its_launch_leaves_nothing_stale_after_delete_force() {
    if *flavor() != Flavor::Berth {
        // The shim's files are removed by berth's delete, which records them at create.
        assert_ne!(flavor().name(), "berth");
        return;
    }
    let _t = Test::exclusive("faults_shimlaunch");
    let mut rng = Rng::new("faults_shim");
    let n = sized(20, 200);
    let mut problems = Vec::new();
    // Kills after which there was a container to delete (the shim had started create).
    let mut existed = 0;
    for i in 0..n {
        let terminal = i % 2 == 1;
        let mut s = ShimTest::new("shimlaunch", &["sleep", "100"], terminal);
        let tmp = s.dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let mut cmd = s.command(&["--start"]);
        if terminal {
            cmd.arg("--terminal");
        }
        cmd.env("TMPDIR", &tmp).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let mut caller = procs::spawn(&mut cmd).expect("start berth-shim");
        let moment = kill_moment(&mut rng);
        std::thread::sleep(moment);
        // The caller-facing process, then the detached shim (its pid file is written
        // first thing; before that, it is a child of the caller, or of us once orphaned).
        let caller_pid = caller.id() as i32;
        let mut shims: Vec<i32> = shim_support::children_of(caller_pid).into_iter().map(|(p, _)| p).collect();
        let _ = caller.kill();
        let _ = caller.wait();
        procs::untrack(caller.id());
        shims.extend(std::fs::read_to_string(&s.shim_pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok()));
        shims.extend(
            shim_support::children_of(std::process::id() as i32).into_iter().map(|(p, _)| p).filter(|&p| procs::cmdline(p).is_some_and(|c| c.contains(&s.id))),
        );
        for &p in &shims {
            if procs::cmdline(p).is_some_and(|c| c.contains("berth-shim")) {
                procs::signal(p, libc::SIGKILL);
                // Reaped (it is ours now): a zombie still holds its pid, and the next
                // shim leaves the files of a shim whose pid is taken.
                assert!(shim_support::wait_gone(p, 10 * SEC), "the shim {p} did not die");
            }
        }
        // The runtime the shim started goes on without it: let it finish first, as an
        // engine lets the create it started finish before it cleans up.
        let finished = shim_support::wait_for(30 * SEC, || shim_support::processes_mentioning(&s.id).into_iter().all(|p| comm(p) != "berth"));
        assert!(finished, "the runtime started by the killed shim did not finish");
        let rt = runtime_of(&s);
        if rt.cmd(&["state", &s.id]).success() {
            existed += 1;
        }
        let d = rt.delete_force(&s.id);
        if !d.success() {
            problems.push(format!("#{i} killed after {moment:?}: delete --force failed: {}", d.stderr.trim()));
        }
        let mut left: Vec<String> = entries(&tmp);
        if s.attach.exists() {
            left.push(s.attach.display().to_string());
        }
        if s.root.join(&s.id).exists() {
            left.push(format!("state of {}", s.id));
        }
        left.extend(shim_support::processes_mentioning(&s.id).into_iter().map(|p| format!("process {p}")));
        left.extend(host::cgroup_dirs_named(&s.id).into_iter().map(|p| p.display().to_string()));
        if !left.is_empty() {
            // A shim killed between making its console socket and starting the runtime
            // leaves the socket for the next shim, which removes it.
            let only_console = left.iter().all(|l| l.ends_with(".console"));
            if only_console {
                let mut next = ShimTest::new("shimnext", &["true"], false);
                let mut c = next.command(&[]);
                c.env("TMPDIR", &tmp);
                let out = launch_shim(&mut next, &mut c);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                left.retain(|l| !l.ends_with(".console") || tmp.join(l).exists());
            }
        }
        if !left.is_empty() {
            problems.push(format!("#{i} (terminal: {terminal}) killed after {moment:?}: {left:?}"));
        }
        s.shim_pid = None;
        s.init_pid = None;
    }
    eprintln!("faults_shim: {n} shim kills, {existed} with a container to delete, {} left something", problems.len());
    assert!(problems.is_empty(), "{} of {n} shim kills left something:\n{}", problems.len(), problems.join("\n"));
    assert!(existed > 0, "no kill came after the shim had started create: the moments do not exercise it");
}

#[test]
fn a_hook_running_when_create_is_killed_dies_with_it() {
    let t = Test::exclusive("faults_hookkill");
    let before = t.snapshot();
    for phase in ["prestart", "createRuntime"] {
        let mark = t.path(&format!("{phase}.pid"));
        let mut b = t.bundle();
        b.args(&["sleep", "100"]);
        b.set(&format!("/hooks/{phase}"), json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 100", mark.display())]}]));
        b.write();
        let dir = b.dir.to_string_lossy().into_owned();
        let id = t.id(phase);
        let mut r = t.rt.spawn(&["create", "--bundle", &dir, &id], &Opts::default());
        let deadline = Instant::now() + 30 * SEC;
        let hook: i32 = loop {
            if let Some(p) = std::fs::read_to_string(&mark).ok().and_then(|s| s.trim().parse().ok()) {
                break p;
            }
            assert!(Instant::now() < deadline, "the {phase} hook did not start");
            std::thread::sleep(Duration::from_millis(5));
        };
        r.kill();
        let gone = Instant::now() + 5 * SEC;
        while procs::alive(hook) && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!procs::alive(hook), "the {phase} hook {hook} outlived the killed create");
        t.rt.delete_force(&id).ok();
        let left = t.leftovers(&before, &id);
        assert!(left.is_empty(), "{phase}: {left:?}");
    }
}
