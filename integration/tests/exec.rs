//! `exec`: a process joins a running container's namespaces and cgroup, honours runc's
//! flags, and its exit status comes back as the command's.

use berth_integration::*;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

/// A container running `sleep`, created and started.
fn running(t: &Test, id: &str) -> Bundle {
    let mut b = t.bundle();
    b.args(&["sleep", "300"]);
    t.rt.create(id, &b).ok();
    t.rt.start(id).ok();
    b
}

#[test]
fn exec_joins_the_pid_namespace_and_passes_the_exit_status() {
    let t = Test::new("exec_pidns");
    let id = t.id("");
    running(&t, &id);
    // Inside, pid 1 is the container's sleep: the exec'd shell is in its pid namespace.
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo my-pid=$$"]);
    o.ok();
    assert!(o.stdout.contains("sleep 300"), "{}", o.describe());
    let pid: i32 = o.stdout.split("my-pid=").nth(1).unwrap().trim().parse().unwrap();
    assert!(pid > 1 && pid < 100, "exec'd process should have a small pid in the container: {pid}");
    let o = t.rt.cmd(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(o.code(), 7, "{}", o.describe());
}

#[test]
fn exec_honours_env_cwd_and_user() {
    let t = Test::new("exec_flags");
    let id = t.id("");
    running(&t, &id);
    let o = t.rt.cmd(&[
        "exec",
        "--env",
        "GREETING=hi",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        "-g",
        "10",
        &id,
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; id -g; id -G",
    ]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[..4], ["hi", "/tmp", "65534", "65534"], "{}", o.describe());
    assert!(lines[4].split(' ').any(|g| g == "10"), "additional gid missing: {}", o.describe());
}

#[test]
fn exec_process_file_is_used() {
    let t = Test::new("exec_process");
    let id = t.id("");
    running(&t, &id);
    let p = t.path("process.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo from-file $X; exit 3"], "cwd": "/", "env": ["PATH=/bin", "X=42"],
        "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    let o = t.rt.cmd(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(o.code(), 3, "{}", o.describe());
    assert!(o.stdout.contains("from-file 42"), "{}", o.describe());
}

#[test]
fn exec_detached_writes_its_pid_file_and_returns() {
    let t = Test::new("exec_detach");
    let id = t.id("");
    running(&t, &id);
    let pidfile = t.path("exec.pid");
    t.rt.cmd(&["exec", "-d", "--pid-file", pidfile.to_str().unwrap(), &id, "sleep", "100"]).ok();
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(procs::alive(pid), "the detached exec'd process is not running");
    // It is in the container's pid namespace.
    let init = t.rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(host::ns_link(&pid.to_string(), "pid"), host::ns_link(&init.to_string(), "pid"));
    // And in the container's cgroup, in every hierarchy.
    let cg = |p: i64| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(pid as i64), cg(init), "the exec'd process is not in the container's cgroups");
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let t = Test::new("exec_stopped");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["true"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    t.rt.wait_status(&id, "stopped", 10 * std::time::Duration::from_secs(1));
    t.rt.cmd(&["exec", &id, "true"]).failed().stderr_has("stopped");
}

#[test]
fn exec_detached_with_a_terminal_sends_the_pty_to_the_console_socket() {
    let t = Test::new("exec_tty");
    let id = t.id("");
    running(&t, &id);
    let sock = t.path("exec-console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let accept = std::thread::spawn(move || {
        let (c, _) = listener.accept().expect("the runtime connected");
        host::recv_fd(c.as_raw_fd())
    });
    t.rt.cmd(&["exec", "-d", "-t", "--console-socket", sock.to_str().unwrap(), &id, "sh", "-c", "tty; test -t 0 && echo is-a-tty"]).ok();
    let (master, _) = accept.join().unwrap().expect("an fd on the console socket");
    let out = String::from_utf8_lossy(&host::read_until_closed(master.as_raw_fd(), std::time::Duration::from_secs(10))).into_owned();
    assert!(out.contains("/dev/pts/") && out.contains("is-a-tty"), "tty output: {out:?}");
}
