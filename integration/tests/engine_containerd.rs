//! containerd 1.6 + containerd-shim-runc-v2 with the runtime under test (issue 8), driven
//! by ctr: every scenario runs with runc and with berth (two #[test]s), through a wrapper
//! that logs each runtime call the shim makes. See integration/src/engines/.
//!
//!     cargo test -p berth-integration --test engine_containerd -- --nocapture

use berth_integration::engines::containerd::Containerd;
use berth_integration::engines::pty::{expect, send};
use berth_integration::engines::suite::{self, Scenario};
use berth_integration::engines::{cap_mask, cgroup, poll, unique, RuntimeUnderTest, CAP_CHOWN, CAP_SYS_ADMIN};
use std::time::Duration;

fn suite_with(rt: RuntimeUnderTest) {
    let c = match Containerd::setup(&rt) {
        Ok(c) => c,
        Err(why) => return berth_integration::engines::skip_or_fail("containerd", &why),
    };
    suite::run("containerd", &rt, &c, SCENARIOS);
}

#[test]
fn containerd_with_runc() {
    suite_with(RuntimeUnderTest::runc());
}

#[test]
fn containerd_with_berth() {
    suite_with(RuntimeUnderTest::berth());
}

const SCENARIOS: &[Scenario<Containerd>] = &[
    ("run_exit_codes", run_exit_codes),
    ("run_not_found", run_not_found),
    ("run_tty", run_tty),
    ("cwd_env", cwd_env),
    ("bind_mounts", bind_mounts),
    ("own_network", own_network),
    ("host_network", host_network),
    ("read_only", read_only),
    ("cap_drop", cap_drop),
    ("privileged", privileged),
    ("uidmap", uidmap),
    ("memory_limit", memory_limit),
    ("cpus", cpus),
    ("tasks_exec", tasks_exec),
    ("tasks_exec_tty", tasks_exec_tty),
    ("tasks_ps", tasks_ps),
    ("pause_resume", pause_resume),
    ("metrics", metrics),
    ("kill_signal", kill_signal),
    ("tasks_rm", tasks_rm),
    ("seccomp", seccomp),
];

/// `ctr run --rm`: stdout, stderr and the exit code come back through the shim; the
/// container is removed.
fn run_exit_codes(c: &Containerd) {
    let id = unique("run");
    let o = c.run(&["--rm"], &id, &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]);
    assert_eq!(o.code(), 7, "{}", o.describe());
    assert!(o.stdout.contains("to-stdout"), "{}", o.describe());
    assert!(o.stderr.contains("to-stderr"), "{}", o.describe());
    let o = c.run(&["--rm"], &unique("run"), &["true"]);
    assert_eq!(o.code(), 0, "{}", o.describe());
    let ls = c.ok(&["containers", "ls", "-q"]);
    assert!(!ls.lines().any(|l| l.trim() == id), "--rm left {id}: {ls}");
}

/// A command that does not exist: the runtime's error (from its --log) reaches ctr.
fn run_not_found(c: &Containerd) {
    let o = c.run(&["--rm"], &unique("nf"), &["/no/such/binary"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.stderr.contains("OCI runtime create failed") || o.stderr.contains("OCI runtime start failed"), "{}", o.describe());
    assert!(o.stderr.contains("no such file or directory"), "the runtime's error words did not reach ctr: {}", o.describe());
}

/// `ctr run -t`: a terminal in the container (the shim's --console-socket).
fn run_tty(c: &Containerd) {
    let a = c.run_args(&["-t", "--rm"], &unique("tty"), &["sh"]);
    let r: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = c.cli.pty(&r, &[expect("# "), send("tty; echo $((6*7))-ok; exit 3\r")], Duration::from_secs(40));
    assert_eq!(o.code(), 3, "{}", o.describe());
    assert!(o.text.contains("42-ok"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "no pty in the container: {}", o.describe());
}

/// `--cwd`, `--env`.
fn cwd_env(c: &Containerd) {
    let o = c.run(
        &["--rm", "--cwd", "/home/test", "--env", "E2E_A=alpha", "--env", "E2E_B=with space"],
        &unique("env"),
        &["sh", "-c", "pwd; echo \"$E2E_A|$E2E_B\""],
    );
    o.ok();
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), ["/home/test", "alpha|with space"], "{}", o.describe());
}

/// `--mount type=bind`: read-write (the host sees the write) and read-only.
fn bind_mounts(c: &Containerd) {
    let host = c.dir.join(unique("bind"));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host-data\n").unwrap();
    let rw = format!("type=bind,src={},dst=/data,options=rbind:rw", host.display());
    let o = c.run(&["--rm", "--mount", &rw], &unique("bind"), &["sh", "-c", "cat /data/from-host; echo container-data > /data/from-container"]);
    o.ok();
    assert!(o.stdout.contains("host-data"), "{}", o.describe());
    assert_eq!(std::fs::read_to_string(host.join("from-container")).unwrap_or_default(), "container-data\n");
    let ro = format!("type=bind,src={},dst=/data,options=rbind:ro", host.display());
    let o = c.run(&["--rm", "--mount", &ro], &unique("bind"), &["sh", "-c", "cat /data/from-host; echo x > /data/nope"]);
    assert_ne!(o.code(), 0, "write to a read-only bind mount succeeded: {}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
    assert!(!host.join("nope").exists());
}

/// The default: a network namespace of its own with only `lo`, which is up.
fn own_network(c: &Containerd) {
    let o = c.run(
        &["--rm"],
        &unique("net"),
        &["sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net; ip link show lo; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo loopback-ok"],
    );
    let ifs: Vec<&str> = o.stdout.lines().take_while(|l| !l.starts_with("net:")).collect();
    assert_eq!(ifs, ["lo"], "{}", o.describe());
    assert!(!o.stdout.contains(&c.netns.link()), "shares the daemon's netns: {}", o.describe());
    assert!(o.stdout.contains("<LOOPBACK,UP"), "lo is not up: {}", o.describe());
    assert!(o.stdout.contains("loopback-ok"), "127.0.0.1 does not answer: {}", o.describe());
}

/// `--net-host`: the daemon's network namespace.
fn host_network(c: &Containerd) {
    let o = c.run(&["--rm", "--net-host"], &unique("hostnet"), &["readlink", "/proc/self/ns/net"]);
    o.ok();
    assert_eq!(o.stdout.trim(), c.netns.link(), "{}", o.describe());
}

/// `--read-only`: the rootfs refuses writes.
fn read_only(c: &Containerd) {
    let o = c.run(&["--rm", "--read-only"], &unique("ro"), &["sh", "-c", "grep ' / ' /proc/mounts; touch /rootfs-file"]);
    assert_ne!(o.code(), 0, "a write to the read-only rootfs succeeded: {}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
    let o = c.run(&["--rm"], &unique("rw"), &["sh", "-c", "touch /rootfs-file && echo wrote"]);
    assert!(o.stdout.contains("wrote"), "{}", o.describe());
}

/// `--cap-drop`: the capability sets and what they allow.
fn cap_drop(c: &Containerd) {
    let o = c.run(&["--rm", "--cap-drop", "CAP_CHOWN"], &unique("cap"), &["sh", "-c", "grep Cap /proc/self/status; chown 1000 /tmp && echo chown-worked"]);
    let eff = cap_mask(&o.stdout, "CapEff");
    assert_eq!(eff & (1 << CAP_CHOWN), 0, "CHOWN still effective: {}", o.describe());
    assert!(!o.stdout.contains("chown-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
    let o = c.run(&["--rm"], &unique("cap"), &["sh", "-c", "chown 1000 /tmp && echo chown-worked"]);
    assert!(o.stdout.contains("chown-worked"), "{}", o.describe());
}

/// `--privileged`: every capability ctr has, no masked /proc paths (keys and timer_list
/// exist on this kernel; kcore does not), the host's devices.
fn privileged(c: &Containerd) {
    let mine = cap_mask(&std::fs::read_to_string("/proc/self/status").unwrap(), "CapEff");
    let dev = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .find(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.file_type().map(|t| t.is_block_device()).unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let script =
        format!("grep CapEff /proc/self/status; grep -c -E ' /proc/(keys|timer_list) ' /proc/mounts; ls /dev/{}", dev.clone().unwrap_or_else(|| "null".into()));
    let o = c.run(&["--rm", "--privileged"], &unique("priv"), &["sh", "-c", &script]);
    o.ok();
    assert_eq!(cap_mask(&o.stdout, "CapEff"), mine, "{}", o.describe());
    assert_ne!(mine & (1 << CAP_SYS_ADMIN), 0);
    assert!(o.stdout.lines().any(|l| l.trim() == "0"), "/proc/keys, /proc/timer_list are still masked: {}", o.describe());
    let o = c.run(&["--rm"], &unique("unpriv"), &["sh", "-c", &script]);
    assert_eq!(cap_mask(&o.stdout, "CapEff") & (1 << CAP_SYS_ADMIN), 0, "{}", o.describe());
    assert!(o.stdout.lines().any(|l| l.trim() == "2"), "/proc/keys, /proc/timer_list are not masked: {}", o.describe());
    if dev.is_some() {
        assert_ne!(o.code(), 0, "a host block device without --privileged: {}", o.describe());
    }
}

/// `--uidmap`/`--gidmap`: a user namespace; root inside is 100000 outside.
fn uidmap(c: &Containerd) {
    let id = unique("userns");
    let pid = c.run_detached(&["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"], &id, "cat /proc/self/uid_map; id -u; exec sleep 1000");
    let log = c.wait_log(&id, "100000");
    let first: Vec<&str> = log.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(first, ["0", "100000", "65536"], "{log}");
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
    assert!(uid.split_whitespace().nth(1) == Some("100000"), "host uid: {uid}");
}

/// `--memory-limit`: the memory cgroup's limit.
fn memory_limit(c: &Containerd) {
    let id = unique("mem");
    let pid = c.run_detached(&["--memory-limit", "67108864"], &id, "exec sleep 1000");
    assert_eq!(cgroup::read(pid, "memory", "memory.limit_in_bytes", "memory.max"), "67108864");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&format!("/{}/{id}", c.namespace)), "not in ctr's cgroup path: {cg}");
}

/// `--cpus`: the CFS quota and period.
fn cpus(c: &Containerd) {
    let pid = c.run_detached(&["--cpus", "0.5"], &unique("cpus"), "exec sleep 1000");
    if cgroup::is_v1(pid, "cpu") {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_quota_us", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_period_us", "cpu.cfs_period_us"), "100000");
    } else {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.max", "cpu.max"), "50000 100000");
    }
}

/// `ctr tasks exec`: exit code, output, and the container's namespaces.
fn tasks_exec(c: &Containerd) {
    let id = unique("exec");
    c.run_detached(&[], &id, "exec sleep 1000");
    let o = c.exec(&[], &id, &["sh", "-c", "echo in-exec; cat /proc/1/comm; exit 5"]);
    assert_eq!(o.code(), 5, "{}", o.describe());
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["in-exec", "sleep"], "{}", o.describe());
    let o = c.exec(&["--cwd", "/tmp", "--user", "1000"], &id, &["sh", "-c", "pwd; id -u"]);
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["/tmp", "1000"], "{}", o.describe());
    let o = c.exec(&[], &id, &["/no/such/binary"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.stderr.contains("no such file or directory"), "{}", o.describe());
}

/// `ctr tasks exec -t`: a terminal for the exec'd process.
fn tasks_exec_tty(c: &Containerd) {
    let id = unique("exect");
    c.run_detached(&[], &id, "exec sleep 1000");
    let a = c.exec_args(&["-t"], &id, &["sh"]);
    let r: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = c.cli.pty(&r, &[expect("# "), send("tty; echo $((7*6))-exec; exit 4\r")], Duration::from_secs(40));
    assert_eq!(o.code(), 4, "{}", o.describe());
    assert!(o.text.contains("42-exec"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "{}", o.describe());
}

/// `ctr tasks ps` (the runtime's `ps --format json`): the container's processes.
fn tasks_ps(c: &Containerd) {
    let id = unique("ps");
    let pid = c.run_detached(&[], &id, "sleep 1000 & echo started; wait");
    c.wait_log(&id, "started");
    let out = c.ok(&["tasks", "ps", &id]);
    let pids: Vec<i32> = out.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert!(pids.contains(&pid), "the init {pid} is not listed: {out}");
    assert!(pids.len() >= 2, "the child is not listed: {out}");
    for p in &pids {
        let cg = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
        assert!(cg.contains(&format!("/{id}")), "pid {p} is not in the container's cgroup: {cg}");
    }
}

/// `ctr tasks pause`/`resume`: status and the freezer follow; it runs on.
fn pause_resume(c: &Containerd) {
    let id = unique("pause");
    let pid = c.run_detached(&[], &id, "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done");
    c.ok(&["tasks", "pause", &id]);
    assert_eq!(c.task_status(&id), "PAUSED");
    assert_eq!(cgroup::freezer_state(pid), "FROZEN");
    c.ok(&["tasks", "resume", &id]);
    assert_eq!(c.task_status(&id), "RUNNING");
    assert_eq!(cgroup::freezer_state(pid), "THAWED");
    let a = c.exec(&[], &id, &["cat", "/tmp/n"]).stdout;
    std::thread::sleep(Duration::from_millis(500));
    let b = c.exec(&[], &id, &["cat", "/tmp/n"]).stdout;
    assert_ne!(a.trim(), b.trim(), "the loop did not run on after resume");
}

/// `ctr tasks metrics`: the shim reads the container's cgroups.
fn metrics(c: &Containerd) {
    let id = unique("metrics");
    c.run_detached(&["--memory-limit", "67108864"], &id, "exec sleep 1000");
    let out = c.ok(&["tasks", "metrics", &id]);
    let val = |k: &str| -> Option<String> { out.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string())) };
    let v2 = out.contains("memory.usage ") || out.contains("memory.max");
    if v2 {
        assert!(out.contains("pids.current"), "{out}");
    } else {
        assert_eq!(val("memory.limit_in_bytes").as_deref(), Some("67108864"), "{out}");
        let usage: u64 = val("memory.usage_in_bytes").and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(usage > 0, "no memory usage: {out}");
        let pids: u64 = val("pids.current").and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(pids >= 1, "no pids: {out}");
    }
}

/// `ctr tasks kill -s SIGUSR1`: the signal reaches the process; its exit code is kept.
fn kill_signal(c: &Containerd) {
    let id = unique("kill");
    c.run_detached(&[], &id, "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done");
    c.wait_log(&id, "ready");
    c.ok(&["tasks", "kill", "-s", "SIGUSR1", &id]);
    c.wait_log(&id, "got-usr1");
    poll(Duration::from_secs(20), "the task to stop", || (c.task_status(&id) == "STOPPED").then_some(()));
    let o = c.ctr(&["tasks", "rm", &id]);
    o.ok();
    assert!(o.stderr.contains("exit code 42") || o.stdout.contains("exit code 42"), "exit code not 42: {}", o.describe());
    // SIGKILL: 137.
    let id = unique("kill9");
    c.run_detached(&[], &id, "exec sleep 1000");
    c.ok(&["tasks", "kill", "-s", "SIGKILL", &id]);
    poll(Duration::from_secs(20), "the task to stop", || (c.task_status(&id) == "STOPPED").then_some(()));
    let o = c.ctr(&["tasks", "rm", &id]);
    assert!(o.stderr.contains("exit code 137"), "{}", o.describe());
}

/// `ctr tasks rm`: refused while running; `-f` kills and removes it: the process, the
/// runtime's state and the cgroup go.
fn tasks_rm(c: &Containerd) {
    let id = unique("rm");
    let pid = c.run_detached(&[], &id, "exec sleep 1000");
    let cg = cgroup::dir_of(pid, "pids").expect("pids cgroup");
    assert!(c.state_root().join(&id).is_dir(), "no state for {id} in the runtime's --root {}", c.state_root().display());
    let o = c.ctr(&["tasks", "rm", &id]);
    assert_ne!(o.code(), 0, "rm of a running task succeeded: {}", o.describe());
    c.ok(&["tasks", "rm", "-f", &id]);
    assert!(c.task(&id).is_none(), "the task is still listed");
    poll(Duration::from_secs(10), "the process to go", || (!berth_integration::procs::alive(pid)).then_some(()));
    assert!(!c.state_root().join(&id).exists(), "the runtime still has state for {id} in {}", c.state_root().display());
    poll(Duration::from_secs(10), "the cgroup to go", || (!cg.exists()).then_some(()));
    c.ok(&["containers", "rm", &id]);
}

/// `--seccomp`: containerd's default profile puts a filter on the process; a profile of
/// our own that makes mkdir fail with ENOSYS is enforced; without the flag, none.
fn seccomp(c: &Containerd) {
    let o = c.run(&["--rm", "--seccomp"], &unique("sc"), &["grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t2"), "no seccomp filter: {}", o.describe());
    let profile = berth_integration::engines::write_mkdir_enosys_profile(&c.dir);
    let p = profile.to_string_lossy().into_owned();
    let o = c.run(&["--rm", "--seccomp", "--seccomp-profile", &p], &unique("sc"), &["sh", "-c", "mkdir /tmp/blocked && echo mkdir-worked"]);
    assert!(!o.stdout.contains("mkdir-worked"), "the profile was not enforced: {}", o.describe());
    assert!(o.stderr.contains("Function not implemented"), "{}", o.describe());
    let o = c.run(&["--rm"], &unique("sc"), &["grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t0"), "{}", o.describe());
}
