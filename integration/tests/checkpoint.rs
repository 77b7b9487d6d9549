//! `checkpoint` and `restore` through criu, end to end: a container counting into a file
//! in its rootfs is checkpointed (left running or not), restored under a new id from the
//! same bundle, and goes on counting from where it was, in its own cgroup; state, kill
//! and delete work on the restored container and leave nothing behind.
//!
//! Debian's criu 3.17 cannot dump on this host's kernel (its vdso handling fails on
//! 6.18): the suite runs in the VM lane (Debian's 6.1 kernel), where a missing criu is a
//! failure, and says why it does not run anywhere else. `bash integration/scripts/vm-lane.sh
//! checkpoint` runs it with berth, then with runc (`BERTH_RUNTIME=/usr/sbin/runc`), which
//! validates the test.

use berth_integration::cgroup_support::v2::in_vm_lane;
use berth_integration::*;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// The counter: stdio on the container's own /dev/null (nothing outside the container
/// stays open), one number a tick into /count.
const COUNTER: &str = "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done";

/// Whether criu can run here; in the VM lane it must.
fn criu_runs_here() -> bool {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    if !in_vm_lane() {
        eprintln!(
            "skipped {test}: Debian's criu 3.17 cannot checkpoint on this host's kernel (its vdso handling fails there); \
             the checkpoint suite runs in the VM lane (bash integration/scripts/vm-lane.sh checkpoint)"
        );
        return false;
    }
    let v = std::process::Command::new("criu").arg("--version").output();
    assert!(v.as_ref().is_ok_and(|o| o.status.success()), "{test}: BERTH_VM_LANE is set but criu does not run: {v:?}");
    true
}

/// The number in the counter's file (0 while there is none or it is being written).
fn count(rootfs: &Path) -> u64 {
    std::fs::read_to_string(rootfs.join("count")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Waits until the count is past `n`; returns it.
#[track_caller]
fn count_past(rootfs: &Path, n: u64) -> u64 {
    let mut c = 0;
    wait_until(WAIT, &format!("the count to pass {n}"), || {
        c = count(rootfs);
        c > n
    });
    c
}

fn pid_alive(pid: i64) -> bool {
    // A zombie has exited: the state field of /proc/PID/stat is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

/// criu's error lines in a log, for a failure message.
fn criu_errors(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(no log {}: {e})", log.display()));
    text.lines().filter(|l| l.contains("Error") || l.contains("Warn")).take(40).collect::<Vec<_>>().join("\n")
}

fn cgroup_procs(cgroups_path: &str) -> Vec<i64> {
    let f = Path::new("/sys/fs/cgroup").join(cgroups_path.trim_start_matches('/')).join("cgroup.procs");
    std::fs::read_to_string(&f).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn checkpoint_then_restore(name: &str, leave_running: bool) {
    if !criu_runs_here() {
        return;
    }
    let t = Test::exclusive(name);
    let before = t.snapshot();
    let id = t.id("orig");
    let cg = t.cgroups_path("orig");
    let mut b = t.bundle();
    b.writable().sh(COUNTER).set("/linux/cgroupsPath", json!(cg));
    let rootfs = b.rootfs();
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().expect("state has a pid");
    // A restart from zero would be told from a restore by the count.
    count_past(&rootfs, 10);

    let images = t.path("images");
    let work = t.path("work");
    let (images_s, work_s) = (images.to_string_lossy().into_owned(), work.to_string_lossy().into_owned());
    let mut args = vec!["checkpoint", "--image-path", &images_s, "--work-path", &work_s];
    if leave_running {
        args.push("--leave-running");
    }
    args.push(&id);
    let at_checkpoint = count(&rootfs);
    let o = t.rt.cmd(&args);
    assert!(o.success(), "checkpoint failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("dump.log")));
    assert!(images.join("inventory.img").exists(), "no images in {}", images.display());
    assert!(work.join("dump.log").exists(), "no dump.log in {}", work.display());

    if leave_running {
        assert_eq!(t.rt.status(&id), "running");
        let now = count(&rootfs);
        count_past(&rootfs, now);
        t.rt.kill(&id, "KILL").ok();
        t.rt.wait_status(&id, "stopped", WAIT);
        t.rt.delete(&id).ok();
    } else {
        // criu ended the tree, and the container is gone (runc destroys it).
        wait_until(WAIT, "the checkpointed init to exit", || !pid_alive(pid));
        let st = t.rt.cmd(&["state", &id]);
        assert!(!st.success() || st.stdout.contains("\"stopped\""), "checkpointed container still there:\n{}", st.describe());
        t.rt.delete_force(&id).ok();
        let still = count(&rootfs);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(count(&rootfs), still, "the count went on after the checkpoint killed the container");
    }
    assert!(host::cgroup_dirs(&cg).is_empty(), "the checkpointed container's cgroup is left");

    // Restore under a new id from the same bundle, in the cgroup the checkpointed
    // container had (runc 1.1 restores into the cgroup the images name, whatever the
    // config says).
    let rid = t.id("restored");
    let rcg = cg.clone();
    let pid_file = t.path("restored.pid");
    let bundle_s = b.dir.to_string_lossy().into_owned();
    let pid_file_s = pid_file.to_string_lossy().into_owned();
    let o = t.rt.cmd(&["restore", "-d", "--image-path", &images_s, "--work-path", &work_s, "--bundle", &bundle_s, "--pid-file", &pid_file_s, &rid]);
    assert!(o.success(), "restore failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("restore.log")));
    let st = t.rt.state(&rid);
    assert_eq!(st["status"], "running", "{st}");
    let rpid = st["pid"].as_i64().expect("restored state has a pid");
    assert!(pid_alive(rpid), "the restored init {rpid} is not alive");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap_or_default().trim(), rpid.to_string(), "pid file");
    assert!(
        cgroup_procs(&rcg).contains(&rpid),
        "the restored init {rpid} is not in its cgroup {rcg}: {:?}; /proc/{rpid}/cgroup: {:?}",
        cgroup_procs(&rcg),
        std::fs::read_to_string(format!("/proc/{rpid}/cgroup"))
    );

    // It goes on from where it was: no value below the checkpoint's, and it grows.
    let first_change = {
        let start = count(&rootfs);
        let deadline = Instant::now() + WAIT;
        loop {
            let c = count(&rootfs);
            if c != start && c != 0 {
                break c;
            }
            assert!(Instant::now() < deadline, "the restored container does not count (file stays at {start})");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(first_change >= at_checkpoint, "restored count {first_change} is below {at_checkpoint}, the count at checkpoint: it started over");
    let later = count_past(&rootfs, first_change);
    assert!(later > first_change);

    t.rt.kill(&rid, "KILL").ok();
    t.rt.wait_status(&rid, "stopped", WAIT);
    t.rt.delete(&rid).ok();
    t.forget_ids();
    assert!(!pid_alive(rpid), "the restored init {rpid} outlived delete");
    t.assert_nothing_left(&before, Some(&rcg));
}

#[test]
fn a_checkpointed_container_is_gone_and_its_restore_counts_on() {
    checkpoint_then_restore("ckpt-stop", false);
}

#[test]
fn a_container_left_running_at_checkpoint_is_restored_and_counts_on() {
    checkpoint_then_restore("ckpt-leave", true);
}

#[test]
fn restore_without_images_fails_naming_the_image_dir_and_leaves_nothing() {
    if !criu_runs_here() {
        return;
    }
    let t = Test::exclusive("ckpt-noimg");
    let before = t.snapshot();
    let rid = t.id("r");
    let rcg = t.cgroups_path("r");
    let mut b = t.bundle();
    b.sh(COUNTER).set("/linux/cgroupsPath", json!(rcg));
    b.write();
    let empty = t.mkdir("empty");
    let (empty_s, bundle_s) = (empty.to_string_lossy().into_owned(), b.dir.to_string_lossy().into_owned());
    let o = t.rt.cmd(&["restore", "-d", "--image-path", &empty_s, "--bundle", &bundle_s, &rid]);
    // Both name where they looked (berth: criu's log there; runc: its descriptors file).
    o.failed().stderr_has(&empty_s);
    t.forget_ids();
    t.assert_nothing_left(&before, Some(&rcg));
}

/// `--pre-dump` copies the memory while the container runs; the final dump with
/// `--parent-path` (relative to its image dir, as runc takes it) writes only what changed
/// since, and a restore from it has everything. The counter writes into a bind mount
/// from the host, which criu takes as external at both ends.
#[test]
fn a_pre_dumped_container_restores_from_the_final_dump_with_its_bind_mount_and_prestart_hook() {
    if !criu_runs_here() {
        return;
    }
    let t = Test::exclusive("ckpt-pre");
    let before = t.snapshot();
    let id = t.id("orig");
    let cg = t.cgroups_path("orig");
    let data = t.mkdir("data");
    let mut b = t.bundle();
    b.sh(&COUNTER.replace("/count", "/data/count")).bind(&data, "/data", &["rw"]).set("/linux/cgroupsPath", json!(cg));
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    count_past(&data, 5);

    let (pre, last, work) = (t.path("ckpt/pre"), t.path("ckpt/final"), t.path("work"));
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let o = t.rt.cmd(&["checkpoint", "--pre-dump", "--image-path", &s(&pre), "--work-path", &s(&work), &id]);
    assert!(o.success(), "pre-dump failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("pre-dump.log")));
    assert_eq!(t.rt.status(&id), "running", "a pre-dump stopped the container");
    let after_pre = count_past(&data, count(&data));
    let o = t.rt.cmd(&["checkpoint", "--parent-path", "../pre", "--image-path", &s(&last), "--work-path", &s(&work), &id]);
    assert!(o.success(), "dump after the pre-dump failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("dump.log")));
    // The final dump points at its parent's pages instead of copying them all.
    assert!(last.join("parent").exists(), "no parent link in {}", last.display());
    t.rt.delete_force(&id).ok();
    // The file is empty if the dump froze the counter between truncating and writing it.
    let at_dump = count(&data).max(after_pre);

    // The restore's config has a prestart hook: it runs once the restored namespaces
    // exist, with the restored init's pid in the state, as runc runs it.
    let hook_state = t.path("hook-state");
    let hook = format!("cat > {}", hook_state.display());
    b.set("/hooks", json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]}));
    b.write();
    let rid = t.id("restored");
    let o = t.rt.cmd(&["restore", "-d", "--image-path", &s(&last), "--work-path", &s(&work), "--bundle", &s(&b.dir), &rid]);
    assert!(o.success(), "restore failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("restore.log")));
    assert_eq!(t.rt.status(&rid), "running");
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&hook_state).expect("the prestart hook did not run at restore")).unwrap();
    assert_eq!((st["id"].as_str(), st["pid"].as_i64()), (Some(rid.as_str()), t.rt.state(&rid)["pid"].as_i64()), "hook state {st}");
    let resumed = count_past(&data, at_dump);
    assert!(resumed > at_dump, "the restored counter did not go on from {at_dump}");
    t.rt.kill(&rid, "KILL").ok();
    t.rt.wait_status(&rid, "stopped", WAIT);
    t.rt.delete(&rid).ok();
    t.forget_ids();
    t.assert_nothing_left(&before, Some(&cg));
}

/// `restore` without `-d` stays in the foreground until the restored container ends,
/// exits as its init did (128+9 after a SIGKILL) and removes the container, as `run` does.
#[test]
fn a_foreground_restore_waits_for_the_container_returns_its_exit_and_removes_it() {
    if !criu_runs_here() {
        return;
    }
    let t = Test::exclusive("ckpt-fg");
    let before = t.snapshot();
    let id = t.id("orig");
    let cg = t.cgroups_path("orig");
    let mut b = t.bundle();
    b.writable().sh(COUNTER).set("/linux/cgroupsPath", json!(cg));
    let rootfs = b.rootfs();
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    count_past(&rootfs, 3);
    let (images, work) = (t.path("images"), t.path("work"));
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let o = t.rt.cmd(&["checkpoint", "--image-path", &s(&images), "--work-path", &s(&work), &id]);
    assert!(o.success(), "checkpoint failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("dump.log")));
    t.rt.delete_force(&id).ok();

    let rid = t.id("restored");
    let o = std::thread::scope(|sc| {
        let restore = sc.spawn(|| t.rt.cmd(&["restore", "--image-path", &s(&images), "--work-path", &s(&work), "--bundle", &s(&b.dir), &rid]));
        wait_until(WAIT, "the restored container to run", || restore.is_finished() || t.rt.cmd(&["state", &rid]).stdout.contains("\"running\""));
        if !restore.is_finished() {
            let now = count(&rootfs);
            count_past(&rootfs, now);
            t.rt.kill(&rid, "KILL").ok();
        }
        restore.join().unwrap()
    });
    assert_eq!(
        o.code(),
        137,
        "the foreground restore did not return the init's end\n{}\ncriu's errors:\n{}",
        o.describe(),
        criu_errors(&work.join("restore.log"))
    );
    // And removed the container, as `run` does.
    assert!(!t.rt.cmd(&["state", &rid]).success(), "the container is left after its foreground restore");
    t.forget_ids();
    t.assert_nothing_left(&before, Some(&cg));
}

/// Accepts one connection on a console socket (in a thread) and returns the pty master
/// the runtime sends on it.
fn console_socket(path: &Path) -> std::thread::JoinHandle<Option<std::os::fd::OwnedFd>> {
    use std::os::fd::AsRawFd;
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind console socket");
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            match listener.accept() {
                Ok((c, _)) => return host::recv_fd(c.as_raw_fd()).ok().map(|(fd, _)| fd),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
    })
}

/// A container with a terminal: checkpointed while its master is held by the caller, and
/// restored with `--console-socket`, where a new master arrives, on which the restored
/// process goes on writing from where it was.
#[test]
fn a_container_with_a_terminal_restores_onto_a_new_pty_sent_to_the_console_socket() {
    use std::os::fd::AsRawFd;
    if !criu_runs_here() {
        return;
    }
    let t = Test::exclusive("ckpt-tty");
    let before = t.snapshot();
    let id = t.id("orig");
    let cg = t.cgroups_path("orig");
    let mut b = t.bundle();
    b.set("/process/terminal", json!(true)).sh("i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done").set("/linux/cgroupsPath", json!(cg));
    b.write();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let sock = t.path("console.sock");
    let accept = console_socket(&sock);
    t.rt.cmd(&["create", "--console-socket", &s(&sock), "--bundle", &s(&b.dir), &id]).ok();
    let master = accept.join().unwrap().expect("no pty master on the console socket");
    t.rt.start(&id).ok();
    let seen = String::from_utf8_lossy(&host::read_until_closed(master.as_raw_fd(), Duration::from_secs(2))).into_owned();
    let last = |text: &str| text.lines().filter_map(|l| l.trim().strip_prefix("tick-")?.parse::<u64>().ok()).max().unwrap_or(0);
    let before_dump = last(&seen);
    assert!(before_dump > 0, "no ticks on the terminal: {seen:?}");

    let (images, work) = (t.path("images"), t.path("work"));
    let o = t.rt.cmd(&["checkpoint", "--image-path", &s(&images), "--work-path", &s(&work), &id]);
    assert!(o.success(), "checkpoint failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("dump.log")));
    drop(master);
    t.rt.delete_force(&id).ok();

    let rid = t.id("restored");
    let sock2 = t.path("console2.sock");
    let accept = console_socket(&sock2);
    let o = t.rt.cmd(&["restore", "-d", "--console-socket", &s(&sock2), "--image-path", &s(&images), "--work-path", &s(&work), "--bundle", &s(&b.dir), &rid]);
    assert!(o.success(), "restore failed\n{}\ncriu's errors:\n{}", o.describe(), criu_errors(&work.join("restore.log")));
    let master = accept.join().unwrap().expect("no new pty master on the console socket at restore");
    let seen = String::from_utf8_lossy(&host::read_until_closed(master.as_raw_fd(), Duration::from_secs(2))).into_owned();
    assert!(last(&seen) > before_dump, "the restored process does not write on the new terminal past tick-{before_dump}: {seen:?}");
    t.rt.kill(&rid, "KILL").ok();
    t.rt.wait_status(&rid, "stopped", WAIT);
    t.rt.delete(&rid).ok();
    t.forget_ids();
    t.assert_nothing_left(&before, Some(&cg));
}
