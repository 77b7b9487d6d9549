//! podman + conmon with the runtime under test (issue 8): every scenario runs with runc
//! and with berth (two #[test]s), through a wrapper that logs each runtime call.
//! See integration/src/engines/ for the setup; needs root, podman, conmon, netavark.
//!
//!     cargo test -p berth-integration --test engine_podman -- --nocapture
//!     BERTH_E2E_ONLY=pause_unpause,kill_signal cargo test -p berth-integration --test engine_podman

use berth_integration::engines::cli::CliOpts;
use berth_integration::engines::podman::Podman;
use berth_integration::engines::pty::{expect, send};
use berth_integration::engines::suite::{self, Scenario};
use berth_integration::engines::{cap_mask, cgroup, net, unique, RuntimeUnderTest, CAP_CHOWN, CAP_NET_ADMIN};
use std::time::Duration;

fn suite_with(rt: RuntimeUnderTest) {
    let p = match Podman::setup(&rt) {
        Ok(p) => p,
        Err(why) => return berth_integration::engines::skip_or_fail("podman", &why),
    };
    suite::run("podman", &rt, &p, SCENARIOS);
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
    ("run_rm_exit_codes", run_rm_exit_codes),
    ("run_not_found_126_127", run_not_found_126_127),
    ("run_it", run_it),
    ("run_detached_logs", run_detached_logs),
    ("exec", exec),
    ("exec_it", exec_it),
    ("top", top),
    ("pause_unpause", pause_unpause),
    ("kill_signal", kill_signal),
    ("stop", stop),
    ("start_restart", start_restart),
    ("rm_running", rm_running),
    ("user_workdir_env", user_workdir_env),
    ("bind_mounts", bind_mounts),
    ("network_none", network_none),
    ("bridge_network", bridge_network),
    ("publish_port", publish_port),
    ("memory_limit", memory_limit),
    ("pids_limit", pids_limit),
    ("cpus", cpus),
    ("read_only_tmpfs", read_only_tmpfs),
    ("cap_add_drop", cap_add_drop),
    ("uidmap", uidmap),
    ("preserve_fds", preserve_fds),
    ("init", init),
    ("seccomp", seccomp),
];

const LONG: &str = "echo started; exec sleep 1000";

/// `run --rm`: the container's stdout, stderr and exit code come back through conmon;
/// the container is gone afterwards. (128+N for a signal: see `stop`.)
fn run_rm_exit_codes(p: &Podman) {
    let name = unique("rm");
    let o = p.podman(&["run", "--rm", "--name", &name, &p.image, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]);
    assert_eq!(o.code(), 7, "{}", o.describe());
    assert!(o.stdout.contains("to-stdout"), "{}", o.describe());
    assert!(o.stderr.contains("to-stderr"), "{}", o.describe());
    let o = p.podman(&["run", "--rm", &p.image, "true"]);
    assert_eq!(o.code(), 0, "{}", o.describe());
    let all = p.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.lines().any(|l| l.trim() == name), "--rm left {name}: {all}");
}

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
    // Under our cgroup parent.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&p.cgroup_parent), "container not under {}: {cg}", p.cgroup_parent);
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
}

/// `exec -it`: a terminal for the exec'd process, input and exit code.
fn exec_it(p: &Podman) {
    let name = unique("execit");
    p.run_detached(&name, &[], LONG);
    let o = p.pty(&["exec", "-it", &name, "sh"], &[expect("# "), send("tty; echo $((7*6))-exec; exit 4\r")]);
    assert_eq!(o.code(), 4, "{}", o.describe());
    assert!(o.text.contains("42-exec"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "{}", o.describe());
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

/// `pause`/`unpause`: the freezer cgroup and podman's status follow, and the container
/// runs on afterwards.
fn pause_unpause(p: &Podman) {
    let name = unique("pause");
    p.run_detached(&name, &[], "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done");
    let pid = p.pid(&name);
    p.ok(&["pause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(cgroup::freezer_state(pid), "FROZEN");
    p.ok(&["unpause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(cgroup::freezer_state(pid), "THAWED");
    let a = p.ok(&["exec", &name, "cat", "/tmp/n"]);
    std::thread::sleep(Duration::from_millis(500));
    let b = p.ok(&["exec", &name, "cat", "/tmp/n"]);
    assert_ne!(a.trim(), b.trim(), "the loop did not run on after unpause");
}

/// `kill -s USR1`: the signal reaches the container's process; its exit code is kept.
fn kill_signal(p: &Podman) {
    let name = unique("kill");
    p.run_detached(&name, &[], "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done");
    p.wait_log(&name, "ready");
    p.ok(&["kill", "-s", "USR1", &name]);
    let o = p.podman(&["wait", &name]);
    assert_eq!(o.stdout.trim(), "42", "{}", o.describe());
    p.wait_log(&name, "got-usr1");
    assert_eq!(p.inspect(&name, "{{.State.ExitCode}}"), "42");
}

/// `stop`: TERM first (a process that handles it exits on its own), KILL after the
/// timeout for one that ignores it.
fn stop(p: &Podman) {
    let a = unique("stop-term");
    p.run_detached(&a, &[], "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    p.wait_log(&a, "ready");
    p.ok(&["stop", "-t", "20", &a]);
    assert_eq!(p.inspect(&a, "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect(&a, "{{.State.ExitCode}}"), "0");
    p.wait_log(&a, "got-term");
    let b = unique("stop-kill");
    p.run_detached(&b, &[], "trap '' TERM; echo ready; while :; do sleep 0.1; done");
    p.wait_log(&b, "ready");
    let t0 = std::time::Instant::now();
    p.ok(&["stop", "-t", "1", &b]);
    assert!(t0.elapsed() >= Duration::from_millis(900), "stop did not wait for the timeout");
    assert_eq!(p.inspect(&b, "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect(&b, "{{.State.ExitCode}}"), "137");
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

/// `rm -f` of a running container: the process, the runtime's state and the cgroup go.
fn rm_running(p: &Podman) {
    let name = unique("rm");
    let id = p.run_detached(&name, &[], LONG);
    let pid = p.pid(&name);
    let cg = cgroup::dir_of(pid, "pids").expect("pids cgroup");
    p.ok(&["rm", "-f", "-t", "0", &name]);
    let o = p.podman(&["inspect", &name]);
    assert!(!o.success(), "still there after rm: {}", o.describe());
    berth_integration::engines::poll(Duration::from_secs(10), "the container's process to go", || (!berth_integration::procs::alive(pid)).then_some(()));
    let state = std::path::Path::new("/run").join(p.rt.name).join(&id);
    assert!(!state.exists(), "the runtime still has state at {}", state.display());
    berth_integration::engines::poll(Duration::from_secs(10), "the cgroup to go", || (!cg.exists()).then_some(()));
}

/// `--user`, `--workdir`, `-e`.
fn user_workdir_env(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--user", "1000:1001", "--workdir", "/home/test", "-e", "E2E_A=alpha", "-e", "E2E_B=with space", &p.image, "sh", "-c", "id -u; id -g; pwd; echo \"$E2E_A|$E2E_B\""]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[..4], ["1000", "1001", "/home/test", "alpha|with space"], "{}", o.describe());
    let o = p.podman(&["run", "--rm", "--user", "nobody", &p.image, "id", "-un"]);
    assert_eq!(o.stdout.trim(), "nobody", "{}", o.describe());
}

/// `-v` bind mounts: read-write (the host sees the write) and `:ro` (writes refused).
fn bind_mounts(p: &Podman) {
    let host = p.dir.join(unique("bind"));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host-data\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let o = p.podman(&["run", "--rm", "-v", &rw, &p.image, "sh", "-c", "cat /data/from-host; echo container-data > /data/from-container"]);
    o.ok();
    assert!(o.stdout.contains("host-data"), "{}", o.describe());
    assert_eq!(std::fs::read_to_string(host.join("from-container")).unwrap_or_default(), "container-data\n");
    let ro = format!("{}:/data:ro", host.display());
    let o = p.podman(&["run", "--rm", "-v", &ro, &p.image, "sh", "-c", "cat /data/from-host; echo x > /data/nope"]);
    assert_ne!(o.code(), 0, "write to a :ro mount succeeded: {}", o.describe());
    assert!(o.stdout.contains("host-data"), "{}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
    assert!(!host.join("nope").exists());
}

/// `--network none`: a network namespace of its own with only the loopback, which is up
/// (runc brings `lo` up in a new network namespace; programs expect 127.0.0.1 to work).
fn network_none(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--network", "none", &p.image, "sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net; ip link show lo; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo loopback-ok"]);
    let ifs: Vec<&str> = o.stdout.lines().take_while(|l| !l.starts_with("net:")).collect();
    assert_eq!(ifs, ["lo"], "{}", o.describe());
    assert!(!o.stdout.contains(&p.netns.link()), "shares the host netns: {}", o.describe());
    assert!(o.stdout.contains("<LOOPBACK,UP"), "lo is not up: {}", o.describe());
    assert!(o.stdout.contains("loopback-ok"), "127.0.0.1 does not answer: {}", o.describe());
}

/// The default bridge network: an eth0 with an address and a default route, and the
/// bridge's gateway answers.
fn bridge_network(p: &Podman) {
    let o = p.podman(&["run", "--rm", &p.image, "sh", "-c", "ip -4 -o addr show eth0; ip route; gw=$(ip route | awk '/default/ {print $3}'); ping -c 1 -W 5 $gw >/dev/null && echo gw-ok"]);
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

/// `-m`: the memory cgroup's limit.
fn memory_limit(p: &Podman) {
    let name = unique("mem");
    p.run_detached(&name, &["-m", "64m"], LONG);
    let pid = p.pid(&name);
    let v = cgroup::read(pid, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(v, "67108864");
}

/// `--pids-limit`: pids.max, and a fork bomb stops there.
fn pids_limit(p: &Podman) {
    let name = unique("pids");
    p.run_detached(&name, &["--pids-limit", "20"], LONG);
    let pid = p.pid(&name);
    assert_eq!(cgroup::read(pid, "pids", "pids.max", "pids.max"), "20");
    let o = p.podman(&["exec", &name, "sh", "-c", "for i in $(seq 1 40); do sleep 30 & done; wait 2>/dev/null; echo done"]);
    let current: u64 = cgroup::read(pid, "pids", "pids.current", "pids.current").parse().unwrap_or(0);
    assert!(current <= 20, "pids.current {current} above the limit; {}", o.describe());
}

/// `--cpus`: the CFS quota and period.
fn cpus(p: &Podman) {
    let name = unique("cpus");
    p.run_detached(&name, &["--cpus", "0.5"], LONG);
    let pid = p.pid(&name);
    if cgroup::is_v1(pid, "cpu") {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_quota_us", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_period_us", "cpu.cfs_period_us"), "100000");
    } else {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.max", "cpu.max"), "50000 100000");
    }
}

/// `--read-only` with `--tmpfs`: the rootfs refuses writes, the tmpfs takes them.
fn read_only_tmpfs(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--read-only", "--tmpfs", "/scratch", &p.image, "sh", "-c", "touch /scratch/ok && echo tmpfs-ok; grep ' /scratch ' /proc/mounts; touch /rootfs-file"]);
    assert_ne!(o.code(), 0, "a write to the read-only rootfs succeeded: {}", o.describe());
    assert!(o.stdout.contains("tmpfs-ok"), "{}", o.describe());
    assert!(o.stdout.contains("tmpfs /scratch tmpfs"), "{}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
}

/// `--cap-drop`/`--cap-add`: the capability sets and what they allow.
fn cap_add_drop(p: &Podman) {
    let o = p.podman(&["run", "--rm", "--cap-drop", "CHOWN", &p.image, "sh", "-c", "grep Cap /proc/self/status; chown 1000 /tmp && echo chown-worked"]);
    let eff = cap_mask(&o.stdout, "CapEff");
    assert_eq!(eff & (1 << CAP_CHOWN), 0, "CHOWN still effective: {}", o.describe());
    assert!(!o.stdout.contains("chown-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
    let o = p.podman(&["run", "--rm", "--network", "none", "--cap-add", "NET_ADMIN", &p.image, "sh", "-c", "grep Cap /proc/self/status; ip link set lo mtu 1280 && echo netadmin-worked"]);
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

/// seccomp: podman's default profile (/usr/share/containers/seccomp.json) puts a filter
/// on the process; a profile of our own that makes mkdir fail with ENOSYS is enforced;
/// `seccomp=unconfined` puts none.
fn seccomp(p: &Podman) {
    let o = p.podman(&["run", "--rm", &p.image, "grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t2"), "no seccomp filter with the default profile: {}", o.describe());
    let profile = berth_integration::engines::write_mkdir_enosys_profile(&p.dir);
    let opt = format!("seccomp={}", profile.display());
    let o = p.podman(&["run", "--rm", "--security-opt", &opt, &p.image, "sh", "-c", "mkdir /tmp/blocked && echo mkdir-worked"]);
    assert!(!o.stdout.contains("mkdir-worked"), "the profile was not enforced: {}", o.describe());
    assert!(o.stderr.contains("Function not implemented"), "{}", o.describe());
    let o = p.podman(&["run", "--rm", "--security-opt", "seccomp=unconfined", &p.image, "grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t0"), "{}", o.describe());
}
