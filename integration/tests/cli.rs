//! The command line, as runc's: global flags, `spec`, and the create flags that are not
//! about the lifecycle itself.

use berth_integration::*;
use std::path::Path;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn no_root() -> Opts {
    Opts { no_root: true, ..Opts::default() }
}

#[test]
fn version_names_the_runtime_and_the_spec_version() {
    let t = Test::new("version");
    // The binary's own name: berth must say "berth version X", not runc's words.
    let name = t.rt.bin.file_name().unwrap().to_string_lossy().into_owned();
    for flag in ["--version", "-v"] {
        let o = t.rt.cmd_opts(&[flag], &no_root());
        o.ok();
        let first = o.stdout.lines().next().unwrap_or("");
        let version = first.strip_prefix(&format!("{name} version ")).unwrap_or_else(|| panic!("{flag}: first line {first:?}"));
        assert!(version.chars().next().is_some_and(|c| c.is_ascii_digit()), "{flag}: version {version:?}");
        let spec = o.stdout.lines().find_map(|l| l.strip_prefix("spec: ")).unwrap_or_else(|| panic!("{flag}: no spec line in\n{}", o.stdout));
        assert!(spec.starts_with("1."), "spec version {spec:?}");
    }
}

#[test]
fn root_flag_keeps_state_under_the_given_directory() {
    let t = Test::new("root_flag");
    let id = t.id("");
    t.create_sleeper(&id);
    assert!(t.rt.root.join(&id).is_dir(), "no {}/{id}", t.rt.root.display());
    // Another root does not see it.
    let other = t.path("other-root");
    let o = t.rt.cmd_opts(&["--root", other.to_str().unwrap(), "list", "-q"], &no_root());
    o.ok();
    assert_eq!(o.stdout.trim(), "");
    t.rt.cmd_opts(&["--root", other.to_str().unwrap(), "state", &id], &no_root()).failed();
}

/// The lines of a json log file, each parsed.
fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read log {}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))).collect()
}

#[test]
fn log_format_json_writes_the_error_as_a_json_line_with_level_msg_and_time() {
    let t = Test::new("log_json");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["no-such-binary"]);
    b.write();
    let log = t.path("runtime.log");
    let o = t.rt.cmd(&["--log", log.to_str().unwrap(), "--log-format", "json", "create", "--bundle", b.dir.to_str().unwrap(), &id]);
    o.failed();
    // containerd and podman report the last error line of this file.
    let lines = json_lines(&log);
    let last = lines.iter().rev().find(|l| l["level"] == "error").unwrap_or_else(|| panic!("no error line in {lines:?}"));
    let msg = last["msg"].as_str().expect("msg is a string");
    assert!(msg.contains("executable file not found"), "msg: {msg}");
    let time = last["time"].as_str().expect("time is a string");
    // RFC 3339: 2024-01-02T03:04:05...
    assert!(time.len() >= 19 && time.as_bytes()[4] == b'-' && time.as_bytes()[10] == b'T', "time: {time}");
}

#[test]
fn log_file_in_text_format_holds_the_error() {
    let t = Test::new("log_text");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["no-such-binary"]);
    b.write();
    let log = t.path("runtime.log");
    let o = t.rt.cmd(&["--log", log.to_str().unwrap(), "create", "--bundle", b.dir.to_str().unwrap(), &id]);
    o.failed();
    let text = std::fs::read_to_string(&log).expect("log file written");
    let line = text.lines().find(|l| l.contains("level=error")).unwrap_or_else(|| panic!("no level=error line in {text:?}"));
    assert!(line.contains("msg=") && line.contains("executable file not found"), "{line}");
    assert!(line.contains("time="), "{line}");
}

#[test]
fn debug_flag_adds_debug_lines_to_the_log() {
    let t = Test::new("debug_flag");
    let mut b = t.bundle();
    b.args(&["true"]);
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    let quiet = t.path("quiet.log");
    let loud = t.path("debug.log");
    t.rt.cmd(&["--log", quiet.to_str().unwrap(), "--log-format", "json", "run", "--bundle", &dir, &t.id("a")]).ok();
    t.rt.cmd(&["--debug", "--log", loud.to_str().unwrap(), "--log-format", "json", "run", "--bundle", &dir, &t.id("b")]).ok();
    let debug_lines = |p: &Path| json_lines(p).into_iter().filter(|l| l["level"] == "debug").count();
    assert_eq!(debug_lines(&quiet), 0, "debug lines without --debug");
    assert!(debug_lines(&loud) > 0, "no debug lines with --debug");
}

#[test]
fn systemd_cgroup_flag_is_accepted() {
    let t = Test::new("systemd_cgroup");
    let o = t.rt.cmd(&["--systemd-cgroup", "list", "--format", "json"]);
    o.ok();
}

/// Engines probe a command with `--help` (podman runs `checkpoint --help` before a
/// checkpoint): every command answers with its flags and exit 0, and does nothing else.
#[test]
fn every_command_answers_help_with_its_flags_and_success() {
    let t = Test::new("help");
    for cmd in [
        "create",
        "start",
        "run",
        "exec",
        "state",
        "kill",
        "delete",
        "list",
        "spec",
        "pause",
        "resume",
        "update",
        "events",
        "ps",
        "checkpoint",
        "restore",
        "features",
    ] {
        for h in ["--help", "-h"] {
            let o = t.rt.cmd(&[cmd, h]);
            o.ok();
            assert!(o.stdout.contains(cmd), "`{cmd} {h}` printed no usage:\n{}", o.describe());
        }
    }
    let o = t.rt.cmd(&["checkpoint", "--help"]);
    assert!(o.stdout.contains("--image-path"), "{}", o.describe());
    // `spec --help` wrote no config.json.
    assert!(!std::env::current_dir().unwrap().join("config.json").exists());
}

#[test]
fn unknown_subcommand_fails() {
    let t = Test::new("unknown_cmd");
    t.rt.cmd(&["frobnicate"]).failed();
}

/// What `spec` must write: runc's default config. runc 1.1 differs from berth's in its
/// hostname ("runc"), its ociVersion ("1.0.2-dev"), in having no cgroup namespace, and
/// with --rootless in keeping the cgroup mount; those are compared away for runc only.
fn assert_default_spec(got: &Value, rootless: bool) {
    let mut got = got.clone();
    let mut want = berth_spec::default_config::default_spec_json(rootless);
    if flavor().is_runc() {
        want["hostname"] = json!("runc");
        want["ociVersion"] = got["ociVersion"].clone();
        if flavor().is_runc_before(1, 2) {
            want["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
            if rootless {
                got["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "cgroup");
            }
        }
    }
    assert_eq!(got, want);
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))).expect("config.json is JSON")
}

#[test]
fn spec_writes_runcs_default_config_in_the_current_directory() {
    let t = Test::new("spec_default");
    let dir = t.mkdir("spec-here");
    t.rt.cmd_opts(&["spec"], &Opts { cwd: Some(dir.clone()), ..Opts::default() }).ok();
    let got = read_json(&dir.join("config.json"));
    assert!(got["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")));
    assert_default_spec(&got, false);
    // The defaults engines and docs rely on:
    assert_eq!(got["root"], json!({"path": "rootfs", "readonly": true}));
    assert_eq!(got["process"]["noNewPrivileges"], true);
    assert_eq!(got["process"]["rlimits"], json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]));
}

#[test]
fn spec_bundle_flag_writes_into_the_bundle() {
    let t = Test::new("spec_bundle");
    let here = t.mkdir("cwd");
    let bundle = t.mkdir("elsewhere");
    t.rt.cmd_opts(&["spec", "--bundle", bundle.to_str().unwrap()], &Opts { cwd: Some(here.clone()), ..Opts::default() }).ok();
    assert!(bundle.join("config.json").exists());
    assert!(!here.join("config.json").exists());
}

#[test]
fn spec_rootless_writes_a_user_namespace_config() {
    let t = Test::new("spec_rootless");
    let dir = t.mkdir("rootless");
    t.rt.cmd_opts(&["spec", "--rootless"], &Opts { cwd: Some(dir.clone()), ..Opts::default() }).ok();
    let got = read_json(&dir.join("config.json"));
    let types: Vec<&str> = got["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|n| n["type"].as_str()).collect();
    assert!(types.contains(&"user"), "{types:?}");
    assert!(!types.contains(&"network"), "{types:?}");
    // Root in the container maps to the caller (root here).
    assert_eq!(got["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": 0, "size": 1}]));
    assert_eq!(got["linux"]["gidMappings"], json!([{"containerID": 0, "hostID": 0, "size": 1}]));
    assert_default_spec(&got, true);
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    let t = Test::new("spec_exists");
    let dir = t.mkdir("has-config");
    std::fs::write(dir.join("config.json"), "{\"mine\": true}").unwrap();
    let o = t.rt.cmd_opts(&["spec"], &Opts { cwd: Some(dir.clone()), ..Opts::default() });
    o.failed().stderr_has("config.json");
    assert_eq!(std::fs::read_to_string(dir.join("config.json")).unwrap(), "{\"mine\": true}");
}

#[test]
fn create_accepts_the_short_bundle_flag() {
    let t = Test::new("bundle_short");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    t.rt.cmd(&["create", "-b", b.dir.to_str().unwrap(), &id]).ok();
    assert_eq!(t.rt.state(&id)["bundle"], b.dir.to_str().unwrap());
}

#[test]
fn create_uses_the_current_directory_as_the_bundle_by_default() {
    let t = Test::new("bundle_cwd");
    let id = t.id("");
    let mut b = t.bundle();
    b.args(&["sleep", "100"]);
    b.write();
    t.rt.cmd_opts(&["create", &id], &Opts { cwd: Some(b.dir.clone()), ..Opts::default() }).ok();
    assert_eq!(t.rt.state(&id)["bundle"], b.dir.to_str().unwrap());
}

#[test]
fn no_pivot_still_confines_the_process_to_the_rootfs() {
    let t = Test::new("no_pivot");
    let mut b = t.bundle();
    std::fs::write(b.rootfs().join("marker"), "in-rootfs").unwrap();
    // /work is on the host, not in the busybox rootfs.
    b.sh("cat /marker; test -e /work && echo host-visible; ls /");
    let o = t.rt.run_with(&t.id(""), &b, &["--no-pivot"]);
    o.ok();
    assert!(o.stdout.starts_with("in-rootfs"), "{}", o.describe());
    assert!(!o.stdout.contains("host-visible"));
}

#[test]
fn new_session_keyring_is_made_unless_no_new_keyring() {
    let t = Test::new("keyring");
    let mut b = t.bundle();
    // /proc/keys is masked by default; unmask it to look at the session keyring.
    b.config["linux"]["maskedPaths"].as_array_mut().unwrap().retain(|p| p != "/proc/keys");
    b.sh("cat /proc/keys");
    let with = t.id("with");
    let o = t.rt.run(&with, &b);
    o.ok();
    assert!(o.stdout.contains(&format!("_ses.{with}")), "no session keyring named for the container:\n{}", o.stdout);
    let without = t.id("without");
    let o = t.rt.run_with(&without, &b, &["--no-new-keyring"]);
    o.ok();
    assert!(!o.stdout.contains(&format!("_ses.{without}")), "a new keyring despite --no-new-keyring:\n{}", o.stdout);
}

#[test]
fn preserve_fds_passes_extra_fds_to_the_process() {
    let t = Test::new("preserve_fds");
    let file = t.path("passed.txt");
    std::fs::write(&file, "content-of-fd-3\n").unwrap();
    let fd = t.open_inheritable(&file);
    let mut b = t.bundle();
    b.sh("cat <&3; ls /proc/self/fd | tr '\\n' ' '");
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    let pass = Opts { pass_fds: vec![(fd, 3)], ..Opts::default() };
    let o = t.rt.cmd_opts(&["run", "--preserve-fds", "1", "--bundle", &dir, &t.id("kept")], &pass);
    o.ok();
    assert!(o.stdout.starts_with("content-of-fd-3\n"), "{}", o.describe());
    // Without the flag fd 3 is not passed on.
    let o = t.rt.cmd_opts(&["run", "--bundle", &dir, &t.id("dropped")], &pass);
    assert!(!o.stdout.contains("content-of-fd-3"), "{}", o.describe());
}

#[test]
fn console_socket_receives_the_pty_master_of_a_terminal_process() {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixListener;
    let t = Test::new("console_socket");
    let id = t.id("");
    let sock = t.path("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let mut b = t.bundle();
    b.set("/process/terminal", json!(true));
    b.sh("tty; test -t 0 && test -t 1 && echo stdio-is-a-tty");
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let accept = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + 30 * SEC;
        let conn = loop {
            match listener.accept() {
                Ok((c, _)) => break Some(c),
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        conn.map(|c| host::recv_fd(c.as_raw_fd()))
    });
    t.rt.cmd(&["create", "--console-socket", sock.to_str().unwrap(), "--bundle", &dir, &id]).ok();
    let (master, _) = accept.join().expect("console socket thread").expect("the runtime connected to the console socket").expect("an fd on the console socket");
    t.rt.start(&id).ok();
    let out = String::from_utf8_lossy(&host::read_until_closed(master.as_raw_fd(), 10 * SEC)).into_owned();
    assert!(out.contains("/dev/pts/"), "tty output: {out:?}");
    assert!(out.contains("stdio-is-a-tty"), "tty output: {out:?}");
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly_without_a_panic() {
    // `berth state ID | head -0`: the write fails with EPIPE (berth ignores SIGPIPE so
    // that its sockets report EPIPE); the command must end as runc does, not panic.
    let t = Test::new("epipe");
    let id = t.id("");
    t.create_sleeper(&id);
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a 2-element array; both ends are closed below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own: every write to the pipe now fails.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is ours; Stdio takes it over.
    let stdout = unsafe { <std::process::Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = std::process::Command::new(&t.rt.bin).args(["--root", t.rt.root.to_str().unwrap(), "state", &id]).stdout(stdout).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "state panicked on a closed stdout:\n{stderr}");
    assert!(!out.status.success(), "state reported success although its output was lost");
}
