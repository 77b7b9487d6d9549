//! What docker and podman share: the same command line for the scenarios below, so one
//! body checks both engines (tests/engine_docker.rs and tests/engine_podman.rs list them
//! next to their own). [`DockerCli`] is the little each engine supplies.

use super::cgroup::{self, Limit, Parent};
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
    /// The cgroup parent (or slice) of its containers.
    fn cgroups(&self) -> &Parent;
    /// Cgroups the engine keeps below that parent by design once its containers are gone.
    fn kept_cgroups(&self) -> &'static [&'static str];

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

/// `impl DockerCli` for an engine struct with `cli: Cli`, `image`, `dir`, `netns` and
/// `cgroups` fields, an `args()` that adds its own flags and a `kept_by_design(&Parent)` function,
/// whose `$run` method runs the CLI.
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
            fn cgroups(&self) -> &$crate::engines::cgroup::Parent {
                &self.cgroups
            }
            fn kept_cgroups(&self) -> &'static [&'static str] {
                Self::kept_by_design(&self.cgroups)
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

/// `pause`/`unpause`: the container's own cgroup (its scope, with systemd) is frozen and
/// thawed (on v2 the kernel's `frozen` event follows), the engine's status follows, and the
/// container runs on afterwards.
pub fn pause_unpause<E: DockerCli>(e: &E) {
    let name = unique("pause");
    e.run_detached(&name, &[], "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done");
    let pid = e.pid(&name);
    e.cgroups().placement(pid);
    e.ok(&["pause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(cgroup::freezer_state(pid), "FROZEN");
    super::poll(Duration::from_secs(5), "cgroup.events to say frozen", || (cgroup::frozen_event(pid) != Some(false)).then_some(()));
    e.ok(&["unpause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(cgroup::freezer_state(pid), "THAWED");
    super::poll(Duration::from_secs(5), "cgroup.events to say thawed", || (cgroup::frozen_event(pid) != Some(true)).then_some(()));
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
/// timeout for one that ignores it; either way the container's cgroup (and its scope
/// unit, with systemd) goes away.
pub fn stop<E: DockerCli>(e: &E) {
    let a = unique("stop-term");
    e.run_detached(&a, &[], "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    e.wait_log(&a, "ready");
    let at = e.cgroups().placement(e.pid(&a));
    e.ok(&["stop", "-t", "20", &a]);
    assert_eq!(e.inspect(&a, "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect(&a, "{{.State.ExitCode}}"), "0");
    e.wait_log(&a, "got-term");
    e.cgroups().wait_gone(&at);
    let b = unique("stop-kill");
    e.run_detached(&b, &[], "trap '' TERM; echo ready; while :; do sleep 0.1; done");
    e.wait_log(&b, "ready");
    let at = e.cgroups().placement(e.pid(&b));
    let t0 = std::time::Instant::now();
    e.ok(&["stop", "-t", "1", &b]);
    assert!(t0.elapsed() >= Duration::from_millis(900), "stop did not wait for the timeout");
    assert_eq!(e.inspect(&b, "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect(&b, "{{.State.ExitCode}}"), "137");
    e.cgroups().wait_gone(&at);
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

/// `--cpus`: the CFS quota and period (and, with systemd, the scope's CPUQuota).
pub fn cpus<E: DockerCli>(e: &E) {
    let name = unique("cpus");
    e.run_detached(&name, &["--cpus", "0.5"], LONG);
    let at = e.cgroups().placement(e.pid(&name));
    e.cgroups().assert_limits(&at, &[Limit::Cpu { quota: 50_000, period: 100_000 }]);
}

/// `-m`: the memory limit (and, with systemd, the scope's MemoryMax).
pub fn memory_limit<E: DockerCli>(e: &E) {
    let name = unique("mem");
    e.run_detached(&name, &["-m", "64m"], LONG);
    let at = e.cgroups().placement(e.pid(&name));
    e.cgroups().assert_limits(&at, &[Limit::Memory(64 << 20)]);
}

/// `--pids-limit`: pids.max (and, with systemd, the scope's TasksMax), and a fork bomb
/// stops there.
pub fn pids_limit<E: DockerCli>(e: &E) {
    let name = unique("pids");
    e.run_detached(&name, &["--pids-limit", "20"], LONG);
    let pid = e.pid(&name);
    let at = e.cgroups().placement(pid);
    e.cgroups().assert_limits(&at, &[Limit::Pids(20)]);
    let o = e.cli(&["exec", &name, "sh", "-c", "for i in $(seq 1 40); do sleep 30 & done; wait 2>/dev/null; echo done"]);
    let current: u64 = cgroup::read(pid, "pids", "pids.current", "pids.current").parse().unwrap_or(0);
    assert!(current <= 20, "pids.current {current} above the limit; {}", o.describe());
}

/// `stats --no-stream --format FORMAT`, where FORMAT prints memory as `USAGE / LIMIT` in
/// binary units (`48KiB / 64MiB`): the limit is `-m`'s and the usage is the cgroup's,
/// above zero.
pub fn stats<E: DockerCli>(e: &E, format: &str) {
    let name = unique("stats");
    e.run_detached(&name, &["-m", "64m"], LONG);
    e.cgroups().placement(e.pid(&name));
    let out = e.ok(&["stats", "--no-stream", "--format", format, &name]);
    let (usage, limit) = out.trim().split_once(" / ").unwrap_or_else(|| panic!("memory usage: {out:?}"));
    assert_eq!(bytes(limit), Some(64 << 20), "{out:?}");
    let used = bytes(usage).unwrap_or_else(|| panic!("memory usage: {out:?}"));
    assert!(used > 0 && used <= 64 << 20, "memory usage {usage}: {out:?}");
}

/// `48KiB`, `1.5MiB`, `512B` in bytes.
fn bytes(s: &str) -> Option<u64> {
    let num = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match &s[num.len()..] {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((num.parse::<f64>().ok()? * scale).round() as u64)
}

/// An exec'd process joins the container's cgroup (its scope, with systemd): it sees the
/// same /proc/self/cgroup as the container's PID 1.
#[track_caller]
pub fn assert_exec_in_container_cgroup<E: DockerCli>(e: &E, name: &str) {
    let out = e.ok(&["exec", name, "sh", "-c", "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup"]);
    let (exec, init) = out.split_once("---\n").unwrap_or_else(|| panic!("{out}"));
    assert!(!init.trim().is_empty(), "{out}");
    assert_eq!(exec.trim(), init.trim(), "the exec'd process is not in the container's cgroup");
}

/// `rm -f` of running containers (one with limits) leaves nothing below our cgroup
/// parent but what the engine keeps by design: no container cgroup and, with systemd, no
/// unit in our slice (not the container's scope, nor podman's scope for conmon).
pub fn rm_leaves_nothing<E: DockerCli>(e: &E) {
    let a = unique("gone");
    let b = unique("gone");
    // Exits on TERM at once (podman's `rm -f` sends it first and waits its stop timeout).
    let script = "trap 'exit 0' TERM; echo started; while :; do sleep 0.1; done";
    e.run_detached(&a, &[], script);
    e.run_detached(&b, &["-m", "64m", "--pids-limit", "20"], script);
    let at = [e.cgroups().placement(e.pid(&a)), e.cgroups().placement(e.pid(&b))];
    e.ok(&["rm", "-f", &a, &b]);
    for p in &at {
        e.cgroups().wait_gone(p);
    }
    e.cgroups().assert_empty(e.kept_cgroups());
}

/// AppArmor, where the kernel has it: the engine gives the container its default profile
/// (docker-default, containers-default-VERSION), and the runtime confines the container's
/// process and an exec'd one with it; `apparmor=unconfined` leaves the process
/// unconfined. Where the kernel has none, the engine asks for no profile.
pub fn apparmor<E: DockerCli>(e: &E) {
    let name = unique("aa");
    e.run_detached(&name, &[], LONG);
    let profile = e.inspect(&name, "{{.AppArmorProfile}}");
    if !std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y") {
        assert_eq!(profile, "", "a profile for the container on a host without AppArmor");
        return;
    }
    assert!(!profile.is_empty() && profile != "unconfined", "no default profile: {profile:?}");
    let want = format!("{profile} (enforce)");
    let pid = e.pid(&name);
    let label = |p: String| p.trim_end_matches(['\n', '\0']).to_string();
    assert_eq!(label(std::fs::read_to_string(format!("/proc/{pid}/attr/current")).unwrap_or_default()), want, "the container's process");
    assert_eq!(label(e.ok(&["exec", &name, "cat", "/proc/self/attr/current"])), want, "an exec'd process");
    let o = e.cli(&["run", "--rm", "--security-opt", "apparmor=unconfined", e.image(), "cat", "/proc/self/attr/current"]);
    o.ok();
    assert_eq!(label(o.stdout.clone()), "unconfined", "{}", o.describe());
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
