//! What docker and podman share: the same command line for the scenarios below, so one
//! body checks both engines (tests/engine_docker.rs and tests/engine_podman.rs list them
//! next to their own). [`DockerCli`] is the little each engine supplies.

use super::cgroup;
use super::net::NetNs;
use super::pty::{expect, send, PtyOutput, Step};
use super::unique;
use crate::runtime::Output;
use std::path::Path;
use std::time::Duration;

/// A long-running container process.
pub const LONG: &str = "echo started; exec sleep 1000";

/// An engine with docker's command line.
pub trait DockerCli {
    /// `docker ARGS` / `podman ARGS`, with the engine's own flags for `run` and `create`.
    fn cli(&self, args: &[&str]) -> Output;
    /// The same on a terminal, driven by `steps`.
    fn pty(&self, args: &[&str], steps: &[Step]) -> PtyOutput;
    /// The test image's reference.
    fn image(&self) -> &str;
    /// The engine's work dir (bind mount sources, profiles).
    fn dir(&self) -> &Path;
    /// The network namespace the engine runs in.
    fn netns(&self) -> &NetNs;

    /// `run -d --name NAME FLAGS IMAGE sh -c SCRIPT`; the full id.
    #[track_caller]
    fn run_detached(&self, name: &str, flags: &[&str], script: &str) -> String {
        let mut a: Vec<&str> = vec!["run", "-d", "--name", name];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[self.image(), "sh", "-c", script]);
        self.ok(&a).trim().to_string()
    }

    /// Runs and asserts success; stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        o.ok();
        o.stdout
    }

    /// `inspect --format FORMAT NAME`, trimmed.
    #[track_caller]
    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name]).trim().to_string()
    }

    /// The host pid of a running container.
    #[track_caller]
    fn pid(&self, name: &str) -> i32 {
        let p = self.inspect(name, "{{.State.Pid}}");
        p.parse().unwrap_or_else(|_| panic!("pid of {name}: {p:?}"))
    }

    /// Waits until the container's log contains `text`; the log.
    #[track_caller]
    fn wait_log(&self, name: &str, text: &str) -> String {
        super::poll(Duration::from_secs(30), &format!("{text:?} in the log of {name}"), || {
            let o = self.cli(&["logs", name]);
            let t = format!("{}{}", o.stdout, o.stderr);
            t.contains(text).then_some(t)
        })
    }
}

/// `impl DockerCli` for an engine struct with `cli: Cli`, `image`, `dir` and `netns`
/// fields and an `args()` that adds its own flags, whose `$run` method runs the CLI.
macro_rules! impl_docker_cli {
    ($t:ty, $run:ident) => {
        impl $crate::engines::compat::DockerCli for $t {
            fn cli(&self, args: &[&str]) -> $crate::runtime::Output {
                self.$run(args)
            }
            fn pty(&self, args: &[&str], steps: &[$crate::engines::pty::Step]) -> $crate::engines::pty::PtyOutput {
                self.cli.pty(&self.args(args), steps, std::time::Duration::from_secs(40))
            }
            fn image(&self) -> &str {
                &self.image
            }
            fn dir(&self) -> &std::path::Path {
                &self.dir
            }
            fn netns(&self) -> &$crate::engines::net::NetNs {
                &self.netns
            }
        }
    };
}
pub(crate) use impl_docker_cli;

/// `run --rm`: the container's stdout, stderr and exit code come back; the container is
/// gone afterwards. (128+N for a signal: see `stop`.)
pub fn run_rm_exit_codes<E: DockerCli>(e: &E) {
    let name = unique("rm");
    let o = e.cli(&["run", "--rm", "--name", &name, e.image(), "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]);
    assert_eq!(o.code(), 7, "{}", o.describe());
    assert!(o.stdout.contains("to-stdout"), "{}", o.describe());
    assert!(o.stderr.contains("to-stderr"), "{}", o.describe());
    let o = e.cli(&["run", "--rm", e.image(), "true"]);
    assert_eq!(o.code(), 0, "{}", o.describe());
    let all = e.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.lines().any(|l| l.trim() == name), "--rm left {name}: {all}");
}

/// `exec -it`: a terminal for the exec'd process, input and exit code.
pub fn exec_it<E: DockerCli>(e: &E) {
    let name = unique("execit");
    e.run_detached(&name, &[], LONG);
    let o = e.pty(&["exec", "-it", &name, "sh"], &[expect("# "), send("tty; echo $((7*6))-exec; exit 4\r")]);
    assert_eq!(o.code(), 4, "{}", o.describe());
    assert!(o.text.contains("42-exec"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "{}", o.describe());
}

/// `pause`/`unpause`: the freezer cgroup and the engine's status follow, and the
/// container runs on afterwards.
pub fn pause_unpause<E: DockerCli>(e: &E) {
    let name = unique("pause");
    e.run_detached(&name, &[], "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done");
    let pid = e.pid(&name);
    e.ok(&["pause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(cgroup::freezer_state(pid), "FROZEN");
    e.ok(&["unpause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(cgroup::freezer_state(pid), "THAWED");
    let a = e.ok(&["exec", &name, "cat", "/tmp/n"]);
    std::thread::sleep(Duration::from_millis(500));
    let b = e.ok(&["exec", &name, "cat", "/tmp/n"]);
    assert_ne!(a.trim(), b.trim(), "the loop did not run on after unpause");
}

/// `kill -s USR1`: the signal reaches the container's process; its exit code is kept.
pub fn kill_signal<E: DockerCli>(e: &E) {
    let name = unique("kill");
    e.run_detached(&name, &[], "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done");
    e.wait_log(&name, "ready");
    e.ok(&["kill", "-s", "USR1", &name]);
    let o = e.cli(&["wait", &name]);
    assert_eq!(o.stdout.trim(), "42", "{}", o.describe());
    e.wait_log(&name, "got-usr1");
    assert_eq!(e.inspect(&name, "{{.State.ExitCode}}"), "42");
}

/// `stop`: TERM first (a process that handles it exits on its own), KILL after the
/// timeout for one that ignores it.
pub fn stop<E: DockerCli>(e: &E) {
    let a = unique("stop-term");
    e.run_detached(&a, &[], "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    e.wait_log(&a, "ready");
    e.ok(&["stop", "-t", "20", &a]);
    assert_eq!(e.inspect(&a, "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect(&a, "{{.State.ExitCode}}"), "0");
    e.wait_log(&a, "got-term");
    let b = unique("stop-kill");
    e.run_detached(&b, &[], "trap '' TERM; echo ready; while :; do sleep 0.1; done");
    e.wait_log(&b, "ready");
    let t0 = std::time::Instant::now();
    e.ok(&["stop", "-t", "1", &b]);
    assert!(t0.elapsed() >= Duration::from_millis(900), "stop did not wait for the timeout");
    assert_eq!(e.inspect(&b, "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect(&b, "{{.State.ExitCode}}"), "137");
}

/// `-v` bind mounts: read-write (the host sees the write) and `:ro` (writes refused).
pub fn bind_mounts<E: DockerCli>(e: &E) {
    let host = e.dir().join(unique("bind"));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host-data\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let o = e.cli(&["run", "--rm", "-v", &rw, e.image(), "sh", "-c", "cat /data/from-host; echo container-data > /data/from-container"]);
    o.ok();
    assert!(o.stdout.contains("host-data"), "{}", o.describe());
    assert_eq!(std::fs::read_to_string(host.join("from-container")).unwrap_or_default(), "container-data\n");
    let ro = format!("{}:/data:ro", host.display());
    let o = e.cli(&["run", "--rm", "-v", &ro, e.image(), "sh", "-c", "cat /data/from-host; echo x > /data/nope"]);
    assert_ne!(o.code(), 0, "write to a :ro mount succeeded: {}", o.describe());
    assert!(o.stdout.contains("host-data"), "{}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
    assert!(!host.join("nope").exists());
}

/// `--network none`: a network namespace of its own with only the loopback, which is up
/// (runc brings `lo` up in a new network namespace; programs expect 127.0.0.1 to work).
pub fn network_none<E: DockerCli>(e: &E) {
    let o = e.cli(&[
        "run",
        "--rm",
        "--network",
        "none",
        e.image(),
        "sh",
        "-c",
        "ls /sys/class/net; readlink /proc/self/ns/net; ip link show lo; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo loopback-ok",
    ]);
    let ifs: Vec<&str> = o.stdout.lines().take_while(|l| !l.starts_with("net:")).collect();
    assert_eq!(ifs, ["lo"], "{}", o.describe());
    assert!(!o.stdout.contains(&e.netns().link()), "shares the host netns: {}", o.describe());
    assert!(o.stdout.contains("<LOOPBACK,UP"), "lo is not up: {}", o.describe());
    assert!(o.stdout.contains("loopback-ok"), "127.0.0.1 does not answer: {}", o.describe());
}

/// `--cpus`: the CFS quota and period.
pub fn cpus<E: DockerCli>(e: &E) {
    let name = unique("cpus");
    e.run_detached(&name, &["--cpus", "0.5"], LONG);
    let pid = e.pid(&name);
    if cgroup::is_v1(pid, "cpu") {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_quota_us", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup::read(pid, "cpu", "cpu.cfs_period_us", "cpu.cfs_period_us"), "100000");
    } else {
        assert_eq!(cgroup::read(pid, "cpu", "cpu.max", "cpu.max"), "50000 100000");
    }
}

/// `--read-only` with `--tmpfs`: the rootfs refuses writes, the tmpfs takes them.
pub fn read_only_tmpfs<E: DockerCli>(e: &E) {
    let o = e.cli(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        e.image(),
        "sh",
        "-c",
        "touch /scratch/ok && echo tmpfs-ok; grep ' /scratch ' /proc/mounts; touch /rootfs-file",
    ]);
    assert_ne!(o.code(), 0, "a write to the read-only rootfs succeeded: {}", o.describe());
    assert!(o.stdout.contains("tmpfs-ok"), "{}", o.describe());
    assert!(o.stdout.contains("tmpfs /scratch tmpfs"), "{}", o.describe());
    assert!(o.stderr.contains("Read-only file system"), "{}", o.describe());
}

/// A seccomp profile of our own that makes mkdir fail with ENOSYS is enforced, and
/// `seccomp=unconfined` puts no filter on the process; the engine's default profile
/// puts one.
pub fn seccomp_profiles<E: DockerCli>(e: &E) {
    let o = e.cli(&["run", "--rm", e.image(), "grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t2"), "no seccomp filter with the default profile: {}", o.describe());
    let profile = super::write_mkdir_enosys_profile(e.dir());
    let opt = format!("seccomp={}", profile.display());
    let o = e.cli(&["run", "--rm", "--security-opt", &opt, e.image(), "sh", "-c", "mkdir /tmp/blocked && echo mkdir-worked"]);
    assert!(!o.stdout.contains("mkdir-worked"), "the profile was not enforced: {}", o.describe());
    assert!(o.stderr.contains("Function not implemented"), "{}", o.describe());
    let o = e.cli(&["run", "--rm", "--security-opt", "seccomp=unconfined", e.image(), "grep", "Seccomp:", "/proc/self/status"]);
    assert!(o.stdout.contains("Seccomp:\t0"), "{}", o.describe());
}
