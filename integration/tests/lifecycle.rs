//! The container lifecycle of the OCI runtime spec, seen through the command line:
//! creating -> created -> running -> stopped, `state` JSON, start/kill/delete/run.

use berth_integration::*;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn create_leaves_a_created_container_whose_process_has_not_run() {
    let t = Test::new("create_waits");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("echo user-process-ran; sleep 100");
    let c = t.rt.create(&id, &b);
    c.ok();
    let st = t.rt.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0 && procs::alive(pid), "the init (pid {pid}) is not alive");
    // The init is set up already: in its own namespaces, with the rootfs as its root.
    assert_ne!(host::ns_link(&pid.to_string(), "net"), host::ns_link("self", "net"));
    assert_ne!(host::ns_link(&pid.to_string(), "mnt"), host::ns_link("self", "mnt"));
    assert!(std::path::Path::new(&format!("/proc/{pid}/root/bin/busybox")).exists(), "the init's root is not the rootfs");
    // The init is set up and waiting: the user process has not been executed.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!c.stdout_now().contains("user-process-ran"), "the process ran before start: {}", c.stdout_now());
    assert_eq!(t.rt.status(&id), "created");
}

#[test]
fn a_created_init_keeps_little_of_berths_binary_mapped_and_still_starts() {
    // berth's init runs berth's code in the cloned child; while it waits for `start` it
    // drops the pages of berth's read-only segments it touched (linux/memory.rs), and
    // faults back in the few it needs after `start`. runc's init is a Go process that
    // keeps its binary mapped, so this pins berth's own behaviour.
    if *flavor() != Flavor::Berth {
        return;
    }
    let t = Test::new("init_pages");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("echo user-process-ran; sleep 100");
    let c = t.rt.create(&id, &b);
    c.ok();
    let pid = t.rt.state(&id)["pid"].as_i64().expect("pid in state") as i32;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the init's exe");
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("the init's smaps");
    // Sum Size and Rss (kB) over the mappings of the binary without write permission.
    let (mut size, mut rss, mut inside) = (0u64, 0u64, false);
    let exe = exe.to_string_lossy();
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            // A mapping's header: range perms offset dev inode [path].
            [range, perms, rest @ ..] if range.contains('-') && !range.ends_with(':') => {
                inside = rest.get(3) == Some(&&*exe) && !perms.contains('w');
            }
            ["Size:", kb, ..] if inside => size += kb.parse::<u64>().unwrap_or(0),
            ["Rss:", kb, ..] if inside => rss += kb.parse::<u64>().unwrap_or(0),
            _ => {}
        }
    }
    assert!(size > 500, "no read-only mapping of {exe:?} found in the init's smaps:\n{smaps}");
    assert!(rss * 4 < size, "the waiting init keeps {rss} kB of berth's {size} kB of read-only pages resident");
    t.rt.start(&id).ok();
    c.wait_stdout("user-process-ran", 10 * SEC);
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn create_runtime_hook_sees_the_creating_state() {
    // "creating" is only observable from inside create: its hooks get the state on stdin.
    let t = Test::new("creating_state");
    let id = t.id("");
    let seen = t.path("hook-stdin.json");
    let hook = t.path("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\ncat > {}\n", seen.display())).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.set("/hooks/createRuntime", json!([{"path": hook}]));
    t.rt.create(&id, &b).ok();
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&seen).expect("the hook ran")).expect("hook stdin is JSON");
    assert_eq!(st["status"], "creating", "{st}");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    assert_eq!(st["pid"], t.rt.state(&id)["pid"], "{st}");
    assert_eq!(t.rt.status(&id), "created");
}

#[test]
fn start_runs_the_process_and_the_container_is_running() {
    let t = Test::new("start_runs");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("echo user-process-ran; sleep 100");
    let c = t.rt.create(&id, &b);
    c.ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    t.rt.start(&id).ok();
    c.wait_stdout("user-process-ran", 10 * SEC);
    let st = t.rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    // start does not make a new process: the init execs the user's.
    assert_eq!(st["pid"].as_i64().unwrap(), pid);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("bin/busybox"), "the container's pid {pid} runs {exe:?}, not the rootfs's busybox");
}

#[test]
fn container_is_stopped_after_its_process_exits() {
    let t = Test::new("stops");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    // Stopped containers stay until deleted.
    assert_eq!(t.rt.list_ids(), vec![id.clone()]);
    t.rt.delete(&id).ok();
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn state_prints_the_oci_state_json() {
    let t = Test::new("state_json");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.set("/annotations", json!({"org.example.key": "value-1"}));
    t.rt.create(&id, &b).ok();
    let st = t.rt.state(&id);
    assert!(st["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "ociVersion: {st}");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "created");
    assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "pid: {st}");
    // The bundle is the absolute path of the bundle directory.
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    assert_eq!(st["annotations"]["org.example.key"], "value-1", "annotations: {st}");
    t.rt.start(&id).ok();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn state_of_an_unknown_container_fails() {
    let t = Test::new("state_unknown");
    let id = t.id("");
    t.rt.cmd(&["state", &id]).failed().stderr_has("does not exist");
}

#[test]
fn start_of_a_running_container_fails() {
    let t = Test::new("start_twice");
    let id = t.id("");
    t.create_sleeper(&id);
    t.rt.start(&id).ok();
    t.rt.start(&id).failed();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn start_of_a_stopped_container_fails() {
    let t = Test::new("start_stopped");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    t.rt.start(&id).failed().stderr_has("stopped");
}

#[test]
fn kill_sends_term_by_default() {
    let t = Test::new("kill_default");
    let id = t.id("");
    let mut b = t.bundle();
    // The shell is the pid namespace's init: it only gets signals it has a handler for.
    b.sh("trap 'echo got-TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done");
    let c = t.rt.create(&id, &b);
    c.ok();
    t.rt.start(&id).ok();
    c.wait_stdout("ready", 10 * SEC);
    t.rt.cmd(&["kill", &id]).ok();
    c.wait_stdout("got-TERM", 10 * SEC);
    t.rt.wait_status(&id, "stopped", 10 * SEC);
}

#[test]
fn kill_takes_the_signal_by_name_with_or_without_sig_and_by_number() {
    let t = Test::new("kill_names");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("n=0; trap 'n=$((n+1)); echo usr1-$n' USR1; echo ready; while true; do sleep 0.05; done");
    let c = t.rt.create(&id, &b);
    c.ok();
    t.rt.start(&id).ok();
    c.wait_stdout("ready", 10 * SEC);
    for (k, sig) in ["USR1", "SIGUSR1", "10"].iter().enumerate() {
        t.rt.kill(&id, sig).ok();
        c.wait_stdout(&format!("usr1-{}", k + 1), 10 * SEC);
    }
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn kill_with_an_unknown_signal_fails() {
    let t = Test::new("kill_badsig");
    let id = t.id("");
    t.create_sleeper(&id);
    t.rt.start(&id).ok();
    t.rt.kill(&id, "SIGNOTASIGNAL").failed();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    let t = Test::new("kill_all");
    let id = t.id("");
    let mut b = t.bundle();
    // Two children; the init shell ignores TERM (no handler, pid namespace init), so
    // only a signal to all processes ends the children and lets the shell finish.
    b.sh("sleep 1000 & sleep 1000 & echo ready; wait; echo children-gone");
    let c = t.rt.create(&id, &b);
    c.ok();
    t.rt.start(&id).ok();
    c.wait_stdout("ready", 10 * SEC);
    // Without --all, TERM reaches only the init, which ignores it.
    t.rt.kill(&id, "TERM").ok();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!c.stdout_now().contains("children-gone"));
    assert_eq!(t.rt.status(&id), "running");
    t.rt.cmd(&["kill", "--all", &id, "TERM"]).ok();
    c.wait_stdout("children-gone", 10 * SEC);
    t.rt.wait_status(&id, "stopped", 10 * SEC);
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let t = Test::new("kill_stopped");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    t.rt.kill(&id, "KILL").failed().stderr_has("not running");
}

#[test]
fn delete_removes_a_stopped_container() {
    let t = Test::new("delete_stopped");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    t.rt.delete(&id).ok();
    t.rt.cmd(&["state", &id]).failed().stderr_has("does not exist");
    assert!(!t.rt.root.join(&id).exists(), "the state dir is still there");
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let t = Test::new("delete_created");
    let id = t.id("");
    t.create_sleeper(&id);
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    t.rt.delete(&id).ok();
    wait_until(10 * SEC, "the created container's init to be gone", || !procs::alive(pid));
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn delete_of_a_running_container_without_force_fails() {
    let t = Test::new("delete_running");
    let id = t.id("");
    t.create_sleeper(&id);
    t.rt.start(&id).ok();
    t.rt.delete(&id).failed().stderr_has("not stopped");
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn delete_force_kills_and_removes_a_running_container() {
    let t = Test::new("delete_force");
    let id = t.id("");
    t.create_sleeper(&id);
    t.rt.start(&id).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    t.rt.delete_force(&id).ok();
    wait_until(10 * SEC, "the container's process to be gone", || !procs::alive(pid));
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn delete_force_of_an_unknown_container_succeeds() {
    let t = Test::new("delete_force_unknown");
    t.rt.delete_force(&t.id("never-created")).ok();
    // Plain delete of an unknown id is an error.
    t.rt.delete(&t.id("never-created-2")).failed().stderr_has("does not exist");
}

#[test]
fn run_returns_the_exit_status_of_the_process() {
    let t = Test::new("run_status");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("echo out-line; exit 3");
    let o = t.rt.run(&id, &b);
    assert_eq!(o.code(), 3, "{}", o.describe());
    assert_eq!(o.stdout, "out-line\n");
    // A foreground run deletes the container when the process is done.
    assert!(t.rt.list_ids().is_empty());
}

#[test]
fn run_returns_128_plus_the_signal_when_the_process_is_killed() {
    let t = Test::new("run_signal");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let run = t.rt.spawn_run(&id, &b, &[]);
    wait_until(10 * SEC, "the container to run", || {
        let o = t.rt.cmd(&["state", &id]);
        o.success() && o.stdout.contains("\"running\"")
    });
    t.rt.kill(&id, "KILL").ok();
    let o = run.wait(10 * SEC);
    assert_eq!(o.code(), 128 + 9, "{}", o.describe());
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let t = Test::new("run_detach");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let o = t.rt.run_with(&id, &b, &["--detach"]);
    o.ok();
    assert_eq!(t.rt.status(&id), "running");
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert!(procs::alive(pid));
}

#[test]
fn pid_file_holds_the_init_pid() {
    let t = Test::new("pid_file");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let pid_file = t.path("init.pid");
    t.rt.create_with(&id, &b, &["--pid-file", pid_file.to_str().unwrap()]).ok();
    let written = std::fs::read_to_string(&pid_file).expect("pid file written");
    let state_pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(written.trim().parse::<i64>().unwrap(), state_pid);
}

#[test]
fn list_shows_containers_in_table_json_and_quiet_formats() {
    let t = Test::new("list");
    let (a, c) = (t.id("a"), t.id("c"));
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    t.rt.create(&a, &b).ok();
    t.rt.create(&c, &b).ok();
    t.rt.start(&c).ok();

    let json = t.rt.list();
    let by_id = |id: &str| json.iter().find(|x| x["id"] == id).cloned().unwrap_or_else(|| panic!("{id} not in {json:?}"));
    assert_eq!(by_id(&a)["status"], "created");
    assert_eq!(by_id(&c)["status"], "running");
    for k in ["pid", "bundle", "created", "owner"] {
        assert!(by_id(&a).get(k).is_some(), "list json lacks {k}: {:?}", by_id(&a));
    }
    assert_eq!(by_id(&a)["bundle"], b.dir.to_str().unwrap());

    let q = t.rt.cmd(&["list", "-q"]);
    q.ok();
    let mut ids: Vec<&str> = q.stdout.lines().collect();
    ids.sort();
    assert_eq!(ids, {
        let mut v = vec![a.as_str(), c.as_str()];
        v.sort();
        v
    });

    let table = t.rt.cmd(&["list"]);
    table.ok();
    let head: Vec<&str> = table.stdout.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(head, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]);
    let row = table.stdout.lines().find(|l| l.starts_with(&format!("{c} "))).expect("a row for the running container");
    assert_eq!(row.split_whitespace().nth(2), Some("running"), "{row}");
}

#[test]
fn list_of_an_empty_root_prints_no_containers() {
    let t = Test::new("list_empty");
    assert!(t.rt.list().is_empty());
    let q = t.rt.cmd(&["list", "-q"]);
    q.ok();
    assert_eq!(q.stdout.trim(), "");
}

#[test]
fn concurrent_creates_of_one_id_let_exactly_one_win() {
    let t = Test::new("concurrent_create");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    let dir = b.dir.to_string_lossy().into_owned();
    let create = || t.rt.spawn(&["create", "--bundle", &dir, &id], &Opts::default());
    let outs: Vec<Output> = if flavor().is_runc() {
        // runc (1.1.5 here) checks for the id with stat, then MkdirAll: concurrent
        // creates can both pass, and the loser's cleanup then removes the winner's state,
        // leaking its init and cgroups. berth locks. Against runc the creates are made
        // one after the other.
        (0..3).map(|_| create().wait(runtime::TIMEOUT)).collect()
    } else {
        let runs: Vec<Running> = (0..4).map(|_| create()).collect();
        runs.into_iter().map(|r| r.wait(runtime::TIMEOUT)).collect()
    };
    let winners = outs.iter().filter(|o| o.success()).count();
    assert_eq!(winners, 1, "{}", outs.iter().map(|o| o.describe()).collect::<Vec<_>>().join("\n---\n"));
    for o in outs.iter().filter(|o| !o.success()) {
        o.stderr_has("exists");
    }
    // The losers did not disturb the winner's container.
    let st = t.rt.state(&id);
    assert_eq!(st["status"], "created");
    assert!(procs::alive(st["pid"].as_i64().unwrap() as i32));
    t.rt.start(&id).ok();
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn concurrent_starts_of_one_container_serialize() {
    let t = Test::new("concurrent_start");
    let id = t.id("");
    let mut b = t.bundle();
    b.sh("echo started; sleep 100");
    let c = t.rt.create(&id, &b);
    c.ok();
    let start = || t.rt.spawn(&["start", &id], &Opts::default());
    let outs: Vec<Output> = if flavor().is_runc() {
        // runc (1.1.5 here) does not lock: a start that opens the exec fifo after the
        // init consumed it blocks forever. Against runc the starts are made one after
        // the other.
        (0..3).map(|_| start().wait(runtime::TIMEOUT)).collect()
    } else {
        let runs: Vec<Running> = (0..4).map(|_| start()).collect();
        runs.into_iter().map(|r| r.wait(runtime::TIMEOUT)).collect()
    };
    let winners = outs.iter().filter(|o| o.success()).count();
    assert_eq!(winners, 1, "{}", outs.iter().map(|o| o.describe()).collect::<Vec<_>>().join("\n---\n"));
    c.wait_stdout("started", 10 * SEC);
    assert_eq!(c.stdout_now().matches("started").count(), 1);
    assert_eq!(t.rt.status(&id), "running");
}

#[test]
fn concurrent_deletes_and_states_of_one_container_do_not_fail_halfway() {
    let t = Test::new("concurrent_delete");
    let id = t.id("");
    t.create_sleeper(&id);
    t.rt.start(&id).ok();
    let deletes: Vec<Running> = (0..3).map(|_| t.rt.spawn(&["delete", "--force", &id], &Opts::default())).collect();
    let states: Vec<Running> = (0..3).map(|_| t.rt.spawn(&["state", &id], &Opts::default())).collect();
    for d in deletes {
        // Every forced delete succeeds: one removes it, the others find it gone.
        d.wait(runtime::TIMEOUT).ok();
    }
    for s in states {
        let o = s.wait(runtime::TIMEOUT);
        // A state either sees the whole container or none of it.
        if o.success() {
            let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state printed broken JSON ({e})\n{}", o.describe()));
            assert_eq!(v["id"], id.as_str());
        } else {
            assert!(o.stderr.contains("does not exist"), "{}", o.describe());
        }
    }
    assert!(t.rt.list_ids().is_empty());
}
