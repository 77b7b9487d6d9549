//! End-to-end tests of berth-shim with a real OCI runtime.
//!
//! Run: `cargo build -p berth-shim --release && cargo test -p berth-integration --test shim`
//! (as root). The runtime is $BERTH_RUNTIME (e.g. /usr/sbin/runc), else the workspace's
//! berth; the shim is $BERTH_SHIM, else the workspace's berth-shim. See
//! integration/src/shim_support.rs.

use berth_integration::shim_support::*;
use std::time::{Duration, Instant};

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn caller_returns_while_the_container_runs_and_the_shim_is_detached() {
    let mut t = ShimTest::new("detached", &["sleep", "1000"], false);
    let started = Instant::now();
    let (out, caller_pid) = t.launch(&["--start"]);
    assert!(out.status.success(), "shim failed: {}", stderr_of(&out));
    assert!(started.elapsed() < Duration::from_secs(20));
    let shim = t.shim_pid.expect("shim pid");
    let init = t.init_pid.expect("init pid");

    // The caller has returned; the shim runs on, on its own.
    assert!(alive(shim), "the shim is not running");
    let (_, ppid, sid) = proc_stat(shim).unwrap();
    assert_ne!(ppid, caller_pid as i32, "the shim is still the caller's child");
    assert_eq!(sid, shim, "the shim does not lead its own session");
    let (_, _, my_sid) = proc_stat(std::process::id() as i32).unwrap();
    assert_ne!(sid, my_sid, "the shim is in the caller's session");
    let tty_nr: i64 = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap().rsplit_once(") ").unwrap().1.split(' ').nth(4).unwrap().parse().unwrap();
    assert_eq!(tty_nr, 0, "the shim has a controlling terminal");

    // The container runs, under the shim (which reaped the runtime's processes).
    assert_eq!(t.status().as_deref(), Some("running"));
    assert!(alive(init));
    assert_eq!(proc_stat(init).unwrap().1, shim, "the container's init is not the shim's child");
    assert!(wait_for(Duration::from_secs(5), || children_of(shim).iter().all(|&(p, _)| p == init)));
    assert!(children_of(shim).iter().all(|&(_, st)| st != 'Z'), "the shim has zombies");

    // Its stdio is the shim's pipes.
    let link = std::fs::read_link(format!("/proc/{init}/fd/1")).unwrap();
    assert!(link.to_string_lossy().starts_with("pipe:"), "container stdout is {link:?}");
}

#[test]
fn exit_file_holds_the_exit_code() {
    let mut t = ShimTest::new("exit5", &["sh", "-c", "exit 5"], false);
    t.launch_ok(&["--start"]);
    assert_eq!(t.wait_exit(), 5);
    t.assert_nothing_left();
    assert_eq!(t.status(), Some("stopped".into()));
    assert!(!t.attach.exists(), "the attach socket was left behind");
}

#[test]
fn exit_file_holds_137_after_runtime_kill() {
    let mut t = ShimTest::new("kill", &["sleep", "1000"], false);
    t.launch_ok(&["--start"]);
    let out = t.runtime_cmd(&["kill", &t.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr_of(&out));
    assert_eq!(t.wait_exit(), 137);
    t.assert_nothing_left();
}

#[test]
fn shim_exits_when_the_container_is_deleted_under_it() {
    let mut t = ShimTest::new("deleted", &["sleep", "1000"], false);
    t.launch_ok(&["--start"]);
    let out = t.runtime_cmd(&["delete", "--force", &t.id]);
    assert!(out.status.success(), "delete --force: {}", stderr_of(&out));
    assert_eq!(t.wait_exit(), 137);
    t.assert_nothing_left();
    assert_eq!(t.status(), None);
}

#[test]
fn log_has_both_streams_in_k8s_file_format() {
    let script = "echo out-1; echo err-1 >&2; printf 'part'; sleep 0.3; echo '-rest'; echo; echo out-2";
    let mut t = ShimTest::new("k8slog", &["sh", "-c", script], false);
    t.launch_ok(&["--start"]);
    assert_eq!(t.wait_exit(), 0);
    let log = t.log_text();
    assert!(log.ends_with('\n'), "log does not end with a newline: {log:?}");
    let entries: Vec<_> = log.lines().map(parse_k8s_line).collect();
    let has = |s: &str, tag: char, text: &str| entries.iter().any(|e| e.0 == s && e.1 == tag && e.2 == text);
    assert!(has("stdout", 'F', "out-1"), "{log}");
    assert!(has("stderr", 'F', "err-1"), "{log}");
    assert!(has("stdout", 'P', "part"), "{log}");
    assert!(has("stdout", 'F', "-rest"), "{log}");
    assert!(has("stdout", 'F', ""), "{log}");
    assert!(has("stdout", 'F', "out-2"), "{log}");
    // stdout entries in order
    let out: Vec<_> = entries.iter().filter(|e| e.0 == "stdout").map(|e| e.2.as_str()).collect();
    assert_eq!(out, ["out-1", "part", "-rest", "", "out-2"]);
}

#[test]
fn log_in_json_format() {
    let script = "echo 'say \"hi\"'; printf 'tab\\there' >&2";
    let mut t = ShimTest::new("jsonlog", &["sh", "-c", script], false);
    t.launch_ok(&["--start", "--log-format", "json"]);
    assert_eq!(t.wait_exit(), 0);
    let log = t.log_text();
    let entries: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    let find = |stream: &str| entries.iter().find(|e| e["stream"] == stream).unwrap_or_else(|| panic!("{log}"));
    assert_eq!(find("stdout")["log"], "say \"hi\"\n");
    assert_eq!(find("stderr")["log"], "tab\there", "a partial line keeps no newline");
    for e in &entries {
        let ts = e["time"].as_str().unwrap();
        parse_k8s_line(&format!("{ts} stdout F x"));
    }
}

#[test]
fn attach_socket_carries_input_in_and_output_out() {
    let script = "cat; echo bye >&2; exit 3";
    let mut t = ShimTest::new("attach", &["sh", "-c", script], false);
    // Without --start: the caller starts the container itself.
    t.launch_ok(&["--stdin"]);
    assert_eq!(t.status().as_deref(), Some("created"));
    let a = AttachClient::connect(&t.attach).expect("connect to attach socket");
    let b = AttachClient::connect(&t.attach).expect("second client");
    let out = t.runtime_cmd(&["start", &t.id]);
    assert!(out.status.success(), "start: {}", stderr_of(&out));

    a.send_stdin(b"hello\n");
    let got = a.collect_until(TIMEOUT, |r| contains(&r.stdout, b"hello\n"));
    assert_eq!(got.stdout, b"hello\n");
    b.send_stdin(b"from b\n");
    let got_b = b.collect_until(TIMEOUT, |r| contains(&r.stdout, b"from b\n"));
    assert_eq!(got_b.stdout, b"hello\nfrom b\n", "every client sees all output");

    // A client that goes away changes nothing for the others.
    drop(b);
    a.close_stdin();
    let rest = a.collect_until(TIMEOUT, |r| r.closed);
    assert_eq!(rest.stdout, b"from b\n");
    assert_eq!(rest.stderr, b"bye\n");
    assert_eq!(rest.exit, Some(3));
    assert_eq!(t.wait_exit(), 3);
    let log = t.log_text();
    assert!(log.contains(" stdout F hello\n") && log.contains(" stdout F from b\n"), "{log}");
    assert!(log.contains(" stderr F bye\n"), "{log}");
    t.assert_nothing_left();
}

#[test]
fn attach_client_that_never_reads_does_not_block_the_container() {
    // About 4 MB of output, far more than socket buffers hold.
    let script = "yes 0123456789012345678901234567890123456789 | head -n 100000; echo done";
    let mut t = ShimTest::new("slowclient", &["sh", "-c", script], false);
    t.launch_ok(&["--log-size-max", "1m"]);
    let lazy = AttachClient::connect(&t.attach).unwrap();
    let out = t.runtime_cmd(&["start", &t.id]);
    assert!(out.status.success(), "start: {}", stderr_of(&out));
    assert_eq!(t.wait_exit(), 0);
    assert!(t.log_text().contains(" stdout F done\n"));
    // It was dropped: after what fitted in its buffer, the stream just ends.
    let got = lazy.collect_until(TIMEOUT, |r| r.closed);
    assert!(got.closed && got.exit.is_none());
    assert!(got.stdout.len() < 4_000_000);
    t.assert_nothing_left();
}

#[test]
fn terminal_output_is_logged() {
    let mut t = ShimTest::new("tty", &["sh", "-c", "echo hello-tty; tty"], true);
    t.launch_ok(&["--start", "--terminal"]);
    assert_eq!(t.wait_exit(), 0);
    let log = t.log_text();
    let entries: Vec<_> = log.lines().map(parse_k8s_line).collect();
    assert!(entries.iter().any(|e| e.0 == "stdout" && e.2.trim_end() == "hello-tty"), "{log}");
    assert!(entries.iter().any(|e| e.2.starts_with("/dev/pts/") || e.2.starts_with("/dev/console")), "{log}");
    assert!(log.contains("\r"), "pty output has CRLF line ends: {log:?}");
    t.assert_nothing_left();
}

#[test]
fn terminal_attach_carries_input_and_resize() {
    let mut t = ShimTest::new("ttyattach", &["sh"], true);
    t.launch_ok(&["--terminal", "--stdin"]);
    let a = AttachClient::connect(&t.attach).unwrap();
    let out = t.runtime_cmd(&["start", &t.id]);
    assert!(out.status.success(), "start: {}", stderr_of(&out));
    a.resize(33, 77);
    a.send_stdin(b"echo $((6*7))x; stty size; exit 4\n");
    let got = a.collect_until(TIMEOUT, |r| r.closed);
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(text.contains("42x"), "{text:?}");
    assert!(text.contains("33 77"), "{text:?}");
    assert_eq!(got.exit, Some(4));
    assert_eq!(t.wait_exit(), 4);
    t.assert_nothing_left();
}

#[test]
fn log_size_max_bounds_the_log() {
    let script = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done";
    let mut t = ShimTest::new("logmax", &["sh", "-c", script], false);
    t.launch_ok(&["--start", "--log-size-max", "8192"]);
    assert_eq!(t.wait_exit(), 0);
    let len = std::fs::metadata(&t.log).unwrap().len();
    let old = t.log.with_extension("log.1");
    let old_len = std::fs::metadata(&old).expect("rotated log").len();
    assert!(len <= 8192, "log is {len} bytes");
    assert!(old_len <= 8192, "rotated log is {old_len} bytes");
    // The newest output is kept.
    let log = t.log_text();
    assert!(log.ends_with(" stdout F line-2999\n"), "{log}");
    for l in log.lines() {
        parse_k8s_line(l);
    }
}

#[test]
fn failed_create_reports_the_runtime_error_and_leaves_no_shim() {
    let mut t = ShimTest::new("failcreate", &["/nonexistent"], false);
    let (out, _) = t.launch(&["--start"]);
    assert!(!out.status.success(), "the shim succeeded");
    let err = stderr_of(&out);
    assert!(err.contains("nonexistent"), "the runtime's error is missing: {err:?}");
    assert!(!t.shim_pid_file.exists(), "the shim pid file was left behind");
    assert!(!t.attach.exists(), "the attach socket was left behind");
    assert!(!t.exit_file.exists());
    assert_eq!(processes_mentioning(&t.id), Vec::<i32>::new());
    assert_eq!(t.status(), None);
}

#[test]
fn exit_command_runs_with_its_args_after_the_exit_file() {
    let mut t = ShimTest::new("exitcmd", &["sh", "-c", "exit 7"], false);
    let marker = t.dir.path().join("marker");
    let script = format!("cat {} > {}; echo \" $0 $1\" >> {}", t.exit_file.display(), marker.display(), marker.display());
    t.launch_ok(&[
        "--start",
        "--exit-command",
        "/bin/busybox",
        "--exit-command-arg",
        "sh",
        "--exit-command-arg",
        "-c",
        "--exit-command-arg",
        &script,
        "--exit-command-arg",
        "first",
        "--exit-command-arg",
        "second",
    ]);
    assert_eq!(t.wait_exit(), 7);
    // The shim waits for the exit command before it exits.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "7 first second\n");
    t.assert_nothing_left();
}

#[test]
fn bad_arguments_are_rejected() {
    let shim = shim_bin();
    let (out, _) = run_with_timeout(std::process::Command::new(&shim).arg("--bundle").arg("/x"), TIMEOUT);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--id"));
    let (out, _) = run_with_timeout(std::process::Command::new(&shim).args(["--id", "x", "--bundle", "/x", "--log-format", "xml"]), TIMEOUT);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = run_with_timeout(std::process::Command::new(&shim).arg("--help"), TIMEOUT);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--attach-socket"));
}

#[test]
fn idle_shim_is_small_and_sleeps() {
    let mut t = ShimTest::new("footprint", &["sleep", "1000"], false);
    t.launch_ok(&["--start"]);
    let shim = t.shim_pid.unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let cpu = |pid: i32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<u64> = s.rsplit_once(") ").unwrap().1.split(' ').skip(11).take(2).map(|x| x.parse().unwrap()).collect();
        f[0] + f[1]
    };
    let before = cpu(shim);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(cpu(shim), before, "the idle shim used CPU");
    let threads = std::fs::read_dir(format!("/proc/{shim}/task")).unwrap().count();
    assert_eq!(threads, 1);
    let rollup = std::fs::read_to_string(format!("/proc/{shim}/smaps_rollup")).unwrap();
    let field = |name: &str| -> u64 { rollup.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap() };
    let (rss, pss) = (field("Rss:"), field("Pss:"));
    eprintln!("idle berth-shim {}: Rss {rss} kB, Pss {pss} kB", shim_bin().display());
    // The budget holds for optimized builds; debug builds carry std and no optimization.
    if !shim_bin().to_string_lossy().contains("/debug/") {
        assert!(rss <= 2048, "Rss {rss} kB");
        assert!(pss <= 450, "Pss {pss} kB");
    }
}

/// A stand-in OCI runtime (a shell script) for paths real runtimes rarely take. Its
/// `create` forks an init that is reparented to the shim; with `early_exit` that init
/// exits 9 before `create` returns. Its `start` fails when `start_fails`. Every call
/// is appended to `<dir>/calls`.
fn fake_runtime(dir: &std::path::Path, early_exit: bool, start_fails: bool) -> std::path::PathBuf {
    let d = dir.display();
    let init = if early_exit { "/bin/sh -c 'exit 9'" } else { "/bin/sh -c 'exec sleep 1000'" };
    let start = if start_fails { "echo 'fake: start failed: boom' >&2; exit 1" } else { "kill -CONT $(cat {d}/init); exit 0" };
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> {d}/calls
while [ "$1" = --root ]; do shift 2; done
cmd=$1; shift
case $cmd in
create)
    pidfile=
    while [ $# -gt 0 ]; do
        case $1 in --pid-file) pidfile=$2; shift 2;; --bundle|--console-socket) shift 2;; *) shift;; esac
    done
    ( {init} </dev/null >/dev/null 2>&1 & echo $! > {d}/init )
    cp {d}/init "$pidfile"
    sleep 0.5
    exit 0;;
start) {start};;
delete) [ -f {d}/init ] && kill -9 $(cat {d}/init) 2>/dev/null; exit 0;;
state) exit 1;;
*) exit 1;;
esac
"#
    )
    .replace("{d}", &d.to_string());
    let p = dir.join("fake-runtime");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

#[test]
fn init_that_exits_before_create_returns_is_still_seen() {
    let mut t = ShimTest::new("earlyexit", &["true"], false);
    t.runtime = fake_runtime(t.dir.path(), true, false);
    t.launch_ok(&[]);
    assert_eq!(t.wait_exit(), 9);
    t.assert_nothing_left();
}

#[test]
fn failed_start_deletes_the_container_and_reports_the_error() {
    let mut t = ShimTest::new("failstart", &["true"], false);
    t.runtime = fake_runtime(t.dir.path(), false, true);
    let (out, _) = t.launch(&["--start"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("start failed: boom"), "{err:?}");
    let calls = std::fs::read_to_string(t.dir.path().join("calls")).unwrap();
    assert!(calls.contains(&format!("delete --force {}", t.id)), "{calls}");
    assert!(!t.shim_pid_file.exists());
    assert!(!t.exit_file.exists());
    t.assert_nothing_left();
}
