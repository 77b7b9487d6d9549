//! podman + conmon with the runtime under test (issue 8): every scenario runs with runc
//! and with berth (two #[test]s), through a wrapper that logs each runtime call.
//! See integration/src/engines/ for the setup; needs root, podman, conmon, netavark.
//!
//!     cargo test -p berth-integration --test engine_podman -- --nocapture
//!     BERTH_E2E_ONLY=pause_unpause,kill_signal cargo test -p berth-integration --test engine_podman

use berth_integration::engines::cli::CliOpts;
use berth_integration::engines::compat::{self, DockerCli, LONG};
use berth_integration::engines::podman::Podman;
use berth_integration::engines::pty::{expect, send};
use berth_integration::engines::suite::{self, Scenario};
use berth_integration::engines::{cap_mask, net, unique, RuntimeUnderTest, CAP_CHOWN, CAP_NET_ADMIN};
use std::time::Duration;

fn suite_with(rt: RuntimeUnderTest) {
    suite::timed("podman", &rt, || {
        let p = match Podman::setup(&rt) {
            Ok(p) => p,
            Err(why) => return berth_integration::engines::skip_or_fail("podman", &why),
        };
        suite::run("podman", &rt, &p, SCENARIOS);
    });
}

#[test]
fn podman_with_runc() {
    suite_with(RuntimeUnderTest::runc());
}

#[test]
fn podman_with_berth() {
    suite_with(RuntimeUnderTest::berth());
}

const SCENARIOS: &[Scenario<Podman>] = &[
    ("run_rm_exit_codes", compat::run_rm_exit_codes),
    ("run_not_found_126_127", run_not_found_126_127),
    ("run_it", run_it),
    ("run_detached_logs", run_detached_logs),
    ("exec", exec),
    ("exec_it", compat::exec_it),
    ("top", top),
    ("pause_unpause", compat::pause_unpause),
    ("kill_signal", compat::kill_signal),
    ("stop", compat::stop),
    ("start_restart", start_restart),
    ("rm_running", rm_running),
    ("user_workdir_env", user_workdir_env),
    ("bind_mounts", compat::bind_mounts),
    ("network_none", compat::network_none),
    ("bridge_network", bridge_network),
    ("publish_port", publish_port),
    ("memory_limit", compat::memory_limit),
    ("pids_limit", compat::pids_limit),
    ("cpus", compat::cpus),
    ("stats", stats),
    ("read_only_tmpfs", compat::read_only_tmpfs),
    ("cap_add_drop", cap_add_drop),
    ("uidmap", uidmap),
    ("preserve_fds", preserve_fds),
    ("init", init),
    ("seccomp", compat::seccomp_profiles),
    ("apparmor", compat::apparmor),
    ("rm_leaves_nothing", compat::rm_leaves_nothing),
    ("checkpoint_restore", checkpoint_restore),
];

/// podman reads the runtime's --log JSON and maps the error words to 127 (command not
/// found) and 126 (not executable), for run and for exec.
fn run_not_found_126_127(p: &Podman) {
    let o = p.podman(&["run", "--rm", &p.image, "/no/such/binary"]);
    assert_eq!(o.code(), 127, "{}", o.describe());
    assert!(o.stderr.contains("no such file or directory") || o.stderr.contains("not found"), "{}", o.describe());
    let o = p.podman(&["run", "--rm", &p.image, "no-such-command-in-path"]);
    assert_eq!(o.code(), 127, "{}", o.describe());
    let o = p.podman(&["run", "--rm", &p.image, "/etc/passwd"]);
    assert_eq!(o.code(), 126, "{}", o.describe());
    assert!(o.stderr.to_lowercase().contains("permission denied"), "{}", o.describe());
    let name = unique("nf");
    p.run_detached(&name, &[], LONG);
    let o = p.podman(&["exec", &name, "/no/such/binary"]);
    assert_eq!(o.code(), 127, "{}", o.describe());
    let o = p.podman(&["exec", &name, "/etc/passwd"]);
    assert_eq!(o.code(), 126, "{}", o.describe());
}

/// `run -it`: a terminal in the container (via --console-socket), input and exit code.
fn run_it(p: &Podman) {
    let o = p.pty(&["run", "-it", "--rm", &p.image, "sh"], &[expect("# "), send("tty; echo size=$(stty size); echo $((6*7))-ok; exit 3\r")]);
    assert_eq!(o.code(), 3, "{}", o.describe());
    assert!(o.text.contains("42-ok"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "no pty in the container: {}", o.describe());
}

/// `run -d`: detached, running, its output in `logs`, its pid alive on the host.
fn run_detached_logs(p: &Podman) {
    let name = unique("det");
    let id = p.run_detached(&name, &[], "echo hello-detached; exec sleep 1000");
    assert_eq!(id.len(), 64, "{id}");
    p.wait_log(&name, "hello-detached");
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    let pid = p.pid(&name);
    assert!(berth_integration::procs::alive(pid), "pid {pid} not alive");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "sleep");
    // Under our cgroup parent, in a cgroup (a scope, with systemd) of its own.
    let at = p.cgroups.placement(pid);
    assert!(at.cgroup.rsplit('/').next().is_some_and(|c| c.contains(&id)), "not in a cgroup of its own: {}", at.cgroup);
}

/// `exec`: exit code, env, user, workdir, and stdout of a process in the container.
fn exec(p: &Podman) {
    let name = unique("exec");
    p.run_detached(&name, &[], LONG);
    let o = p.podman(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(o.code(), 5, "{}", o.describe());
    assert!(o.stdout.contains("in-exec"), "{}", o.describe());
    let out = p.ok(&["exec", "-e", "E2E_VAR=exec-env", "-u", "1000:1000", "-w", "/tmp", &name, "sh", "-c", "echo $E2E_VAR; id -u; id -g; pwd"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["exec-env", "1000", "1000", "/tmp"], "{out}");
    // The exec'd process is in the container's pid namespace: it sees the init as 1.
    let out = p.ok(&["exec", &name, "cat", "/proc/1/comm"]);
    assert_eq!(out.trim(), "sleep");
    compat::assert_exec_in_container_cgroup(p, &name);
}

/// `top`: the container's processes.
fn top(p: &Podman) {
    let name = unique("top");
    p.run_detached(&name, &[], "exec sleep 1001");
    let out = p.ok(&["top", &name]);
    assert!(out.contains("sleep 1001"), "{out}");
    let out = p.ok(&["top", &name, "pid", "comm"]);
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]), "{out}");
}

/// `create` + `start`, then `restart`: a new process each time, logs of both runs.
fn start_restart(p: &Podman) {
    let name = unique("restart");
    p.ok(&["create", "--name", &name, &p.image, "sh", "-c", "echo run-$$-$(cat /proc/uptime | cut -d. -f1)$RANDOM; exec sleep 1000"]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "created");
    p.ok(&["start", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    let pid1 = p.pid(&name);
    p.ok(&["restart", "-t", "1", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    let pid2 = p.pid(&name);
    assert_ne!(pid1, pid2, "restart kept the same process");
    let logs = p.wait_log(&name, "run-");
    // Stop and start again after a stop.
    p.ok(&["stop", "-t", "1", &name]);
    p.ok(&["start", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    let logs2 = super_wait_lines(p, &name, 3);
    assert!(logs2 >= 3, "expected three runs in the log, got {logs2}: {logs}");
}

fn super_wait_lines(p: &Podman, name: &str, n: usize) -> usize {
    let mut k = 0;
    for _ in 0..100 {
        k = p.ok(&["logs", name]).lines().filter(|l| l.starts_with("run-")).count();
        if k >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    k
}

/// `rm -f` of a running container: the process, the runtime's state and the cgroup (and
/// its scope unit, with systemd) go.
fn rm_running(p: &Podman) {
    let name = unique("rm");
    let id = p.run_detached(&name, &[], LONG);
    let pid = p.pid(&name);
    let at = p.cgroups.placement(pid);
    p.ok(&["rm", "-f", "-t", "0", &name]);
    let o = p.podman(&["inspect", &name]);
    assert!(!o.success(), "still there after rm: {}", o.describe());
    berth_integration::engines::poll(Duration::from_secs(10), "the container's process to go", || (!berth_integration::procs::alive(pid)).then_some(()));
    let state = std::path::Path::new("/run").join(p.rt.name).join(&id);
    assert!(!state.exists(), "the runtime still has state at {}", state.display());
    p.cgroups.wait_gone(&at);
}

/// `--user`, `--workdir`, `-e`.
fn user_workdir_env(p: &Podman) {
    let o = p.podman(&[
        "run",
        "--rm",
        "--user",
        "1000:1001",
        "--workdir",
        "/home/test",
        "-e",
        "E2E_A=alpha",
        "-e",
        "E2E_B=with space",
        &p.image,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo \"$E2E_A|$E2E_B\"",
    ]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[..4], ["1000", "1001", "/home/test", "alpha|with space"], "{}", o.describe());
    let o = p.podman(&["run", "--rm", "--user", "nobody", &p.image, "id", "-un"]);
    assert_eq!(o.stdout.trim(), "nobody", "{}", o.describe());
}

/// The default bridge network: an eth0 with an address and a default route, and the
/// bridge's gateway answers.
fn bridge_network(p: &Podman) {
    let o = p.podman(&[
        "run",
        "--rm",
        &p.image,
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; gw=$(ip route | awk '/default/ {print $3}'); ping -c 1 -W 5 $gw >/dev/null && echo gw-ok",
    ]);
    o.ok();
    assert!(o.stdout.contains("inet "), "no IPv4 address on eth0: {}", o.describe());
    assert!(o.stdout.contains("default via"), "no default route: {}", o.describe());
    assert!(o.stdout.contains("gw-ok"), "the gateway does not answer: {}", o.describe());
}

/// `-p HOST:80`: a web server in the container answers on the host's port.
fn publish_port(p: &Podman) {
    let name = unique("web");
    let port = net::port(1);
    let map = format!("{port}:80");
    p.run_detached(&name, &["-p", &map], "echo web-$HOSTNAME > /var/www/index.html; exec httpd -f -p 80 -h /var/www");
    let r = p.netns.http_get(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.contains("200 OK") && r.contains("web-"), "{r}");
}

/// `stats --no-stream`: podman reads the container's cgroup (found from its process).
fn stats(p: &Podman) {
    compat::stats(p, "{{.MemUsageBytes}}");
}

/// `--cap-drop`/`--cap-add`: the capability sets and what they allow.
fn cap_add_drop(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--cap-drop", "CHOWN", &p.image, "sh", "-c", "grep Cap /proc/self/status; chown 1000 /tmp && echo chown-worked"]);
    let eff = cap_mask(&o.stdout, "CapEff");
    assert_eq!(eff & (1 << CAP_CHOWN), 0, "CHOWN still effective: {}", o.describe());
    assert!(!o.stdout.contains("chown-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
    let o = p.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",
        &p.image,
        "sh",
        "-c",
        "grep Cap /proc/self/status; ip link set lo mtu 1280 && echo netadmin-worked",
    ]);
    o.ok();
    let eff = cap_mask(&o.stdout, "CapEff");
    assert_ne!(eff & (1 << CAP_NET_ADMIN), 0, "NET_ADMIN not effective: {}", o.describe());
    assert!(o.stdout.contains("netadmin-worked"), "{}", o.describe());
    // Without it, the same is refused.
    let o = p.podman(&["run", "--rm", "--network", "none", &p.image, "sh", "-c", "ip link set lo mtu 1280 && echo netadmin-worked"]);
    assert!(!o.stdout.contains("netadmin-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
}

/// `--uidmap`/`--gidmap`: a user namespace; root inside is 100000 outside.
fn uidmap(p: &Podman) {
    let name = unique("userns");
    p.run_detached(&name, &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"], LONG);
    let out = p.ok(&["exec", &name, "sh", "-c", "cat /proc/self/uid_map; id -u; ls -ln /bin/busybox"]);
    let first: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(first, ["0", "100000", "65536"], "{out}");
    assert!(out.lines().nth(1).map(str::trim) == Some("0"), "{out}");
    let pid = p.pid(&name);
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
    assert!(uid.split_whitespace().nth(1) == Some("100000"), "host uid: {uid}");
}

/// `--preserve-fds 1`: the caller's fd 3 reaches the container's process as fd 3.
fn preserve_fds(p: &Podman) {
    let f = p.dir.join("preserved.txt");
    std::fs::write(&f, "passed-through-fd-3\n").unwrap();
    let file = std::fs::File::open(&f).unwrap();
    use std::os::fd::AsRawFd;
    let o = p.podman_opts(
        &["run", "--rm", "--preserve-fds", "1", &p.image, "sh", "-c", "cat <&3; ls /proc/self/fd"],
        &CliOpts { pass_fds: vec![(file.as_raw_fd(), 3)], ..Default::default() },
    );
    o.ok();
    assert!(o.stdout.contains("passed-through-fd-3"), "{}", o.describe());
}

/// `--init`: podman's init (catatonit, bind-mounted at /run/podman-init) is PID 1; the
/// command runs as its child and its exit code comes through.
fn init(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--init", &p.image, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo pid=$$; exit 9"]);
    assert_eq!(o.code(), 9, "{}", o.describe());
    assert!(o.stdout.starts_with("/run/podman-init -- sh"), "PID 1 is not the init: {}", o.describe());
    assert!(!o.stdout.contains("pid=1\n"), "{}", o.describe());
}

/// `podman container checkpoint`/`restore` (criu through the runtime's checkpoint and
/// restore commands): a counter whose stdout is conmon's pipe goes on counting from where
/// it was and still logs; `--leave-running` keeps it running; `--export`/`--import`
/// restores into a new container from the tarball (the runtime restores with a new
/// bundle); a container with a terminal is restored onto a new pty. criu runs only in the VM lane (Debian's criu 3.17 fails on this host's kernel).
fn checkpoint_restore(p: &Podman) {
    if !berth_integration::cgroup_support::v2::in_vm_lane() {
        suite::skip("Debian's criu 3.17 cannot checkpoint on this host's kernel; runs in the VM lane");
    }
    let counter = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; echo tick-$i; sleep 0.1; done";
    let count = |name: &str| -> u64 { p.podman(&["exec", name, "cat", "/tmp/count"]).stdout.trim().parse().unwrap_or(0) };
    let count_past = |name: &str, n: u64| -> u64 {
        berth_integration::engines::poll(Duration::from_secs(60), &format!("the count of {name} past {n}"), || {
            let c = count(name);
            (c > n).then_some(c)
        })
    };
    let name = unique("ckpt");
    p.run_detached(&name, &["--network", "none"], counter);
    let before = count_past(&name, 5);

    p.ok(&["container", "checkpoint", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "exited", "checkpointed container's status");
    p.ok(&["container", "restore", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    // Restored, not restarted: the count goes on from where it was, and the log with it.
    let after = count(&name);
    assert!(after >= before, "the count restarted: {after} after the restore, {before} before");
    let now = count_past(&name, after);
    p.wait_log(&name, &format!("tick-{now}"));

    p.ok(&["container", "checkpoint", "--leave-running", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running", "--leave-running stopped the container");
    count_past(&name, count(&name));

    // In the suite's work dir, which the suite removes.
    let tar = p.dir.join(format!("{name}-export.tar.gz"));
    let tar_s = tar.to_string_lossy().into_owned();
    p.ok(&["container", "checkpoint", "--export", &tar_s, &name]);
    p.ok(&["rm", "-f", &name]);
    let copy = unique("ckpt-import");
    p.ok(&["container", "restore", "--import", &tar_s, "--name", &copy]);
    assert_eq!(p.inspect(&copy, "{{.State.Status}}"), "running");
    let imported = count(&copy);
    assert!(imported >= now, "the imported container restarted its count: {imported}, was past {now}");
    count_past(&copy, imported);
    p.ok(&["rm", "-f", &copy]);
    let _ = std::fs::remove_file(&tar);

    // With a terminal (-t) the pty's master is conmon's: the restore gets a new pty,
    // whose master reaches conmon through the console socket, and the log goes on.
    let tty = unique("ckpt-tty");
    p.run_detached(&tty, &["-t", "--network", "none"], counter);
    let before = count_past(&tty, 5);
    p.ok(&["container", "checkpoint", &tty]);
    p.ok(&["container", "restore", &tty]);
    let after = count(&tty);
    assert!(after >= before, "the count restarted: {after} after the restore, {before} before");
    let now = count_past(&tty, after);
    p.wait_log(&tty, &format!("tick-{now}"));
    p.ok(&["rm", "-f", &tty]);
}
