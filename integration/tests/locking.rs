//! A container's lock never hangs a command: commands that wait for another one give up
//! after a bound, naming the holder; `exec --ignore-paused` does not hold the lock while
//! its process waits in a frozen cgroup; `--preserve-fds` with fds that were not passed is
//! refused instead of handing berth's own files (its lock among them) to the container.

use berth_integration::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn resume_is_not_blocked_by_an_exec_waiting_in_the_paused_container() {
    let t = Test::new("lock_paused_exec");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let id = t.id("");
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.cmd(&["pause", &id]).ok();
    assert_eq!(t.rt.status(&id), "paused");
    let exec = t.rt.spawn(&["exec", "--ignore-paused", &id, "echo", "ran after resume"], &Opts::default());
    // The exec'd process is in the frozen cgroup now (or about to be).
    std::thread::sleep(SEC / 2);
    let resume = t.rt.cmd_opts(&["resume", &id], &Opts { timeout: Some(20 * SEC), ..Default::default() });
    resume.ok();
    let o = exec.wait(20 * SEC);
    o.ok();
    assert_eq!(o.stdout, "ran after resume\n", "{}", o.describe());
    t.rt.kill(&id, "KILL").ok();
    t.rt.wait_status(&id, "stopped", 10 * SEC);
    t.rt.delete(&id).ok();
}

#[test]
fn preserve_fds_that_were_not_passed_are_refused_and_leave_nothing() {
    if flavor().is_runc() {
        return; // runc's own behaviour differs (it passes on whatever its fds 3.. are)
    }
    let t = Test::exclusive("lock_preserve_fds");
    let before = t.snapshot();
    let mut b = t.bundle();
    b.sh("echo should not run");
    // Only fd 3 is passed; 4 and 5 are not open in the runtime.
    let file = t.path("passed.txt");
    std::fs::write(&file, "x").unwrap();
    let fd = t.open_inheritable(&file);
    b.write();
    let dir = b.dir.to_string_lossy().into_owned();
    let id = t.id("");
    let o = t.rt.cmd_opts(&["create", "--preserve-fds", "3", "--bundle", &dir, &id], &Opts { pass_fds: vec![(fd, 3)], ..Default::default() });
    // (Which one is reported depends on what the harness leaves open besides fd 3.)
    o.failed().stderr_has("--preserve-fds 3: fd ").stderr_has(" is not open");
    let o = t.rt.cmd_opts(&["state", &id], &Opts { timeout: Some(10 * SEC), ..Default::default() });
    o.failed().stderr_has("does not exist");
    t.assert_nothing_left(&before, None);
    // The same with the fds passed: created, and not left locked (state and delete work).
    let file2 = t.open_inheritable(&file);
    let file3 = t.open_inheritable(&file);
    let o = t
        .rt
        .cmd_opts(&["create", "--preserve-fds", "3", "--bundle", &dir, &id], &Opts { pass_fds: vec![(fd, 3), (file2, 4), (file3, 5)], ..Default::default() });
    o.ok();
    let o = t.rt.cmd_opts(&["delete", "--force", &id], &Opts { timeout: Some(10 * SEC), ..Default::default() });
    o.ok();
}

#[test]
fn a_command_waiting_for_a_held_lock_gives_up_naming_the_holder() {
    if flavor().is_runc() {
        return; // runc has no lock across commands
    }
    let t = Test::new("lock_timeout");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    let id = t.id("");
    t.rt.create(&id, &b).ok();
    // Hold the container's lock as a stuck command would.
    let dir = std::fs::File::open(t.rt.root.join(&id)).unwrap();
    // SAFETY: flock on a file we own.
    assert_eq!(unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) }, 0);
    let started = Instant::now();
    let o =
        t.rt.cmd_opts(&["kill", &id, "KILL"], &Opts { timeout: Some(30 * SEC), env: vec![("BERTH_LOCK_TIMEOUT".into(), "2".into())], ..Default::default() });
    let waited = started.elapsed();
    o.failed().stderr_has(&format!("container {id} is locked")).stderr_has(&format!("pid {}", std::process::id()));
    assert!(waited >= 2 * SEC, "gave up after {waited:?}, before the bound");
    // state does not wait at all: it reports the container.
    assert_eq!(t.rt.status(&id), "created");
    drop(dir);
    t.rt.delete_force(&id).ok();
}
