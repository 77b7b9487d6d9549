//! dockerd (docker.io 20.10) + containerd-shim-runc-v2 with the runtime under test
//! (issue 8): every scenario runs with runc and with berth (two #[test]s, one dockerd
//! each, the runtime registered with `runtimes` and made the default), through a wrapper
//! that logs each runtime call. See integration/src/engines/.
//!
//!     cargo test -p berth-integration --test engine_docker -- --nocapture

use berth_integration::engines::compat::{self, DockerCli, LONG};
use berth_integration::engines::docker::Docker;
use berth_integration::engines::pty::{expect, send};
use berth_integration::engines::suite::{self, Scenario};
use berth_integration::engines::{cap_mask, cgroup, net, poll, unique, RuntimeUnderTest, CAP_CHOWN, CAP_NET_ADMIN};
use std::time::Duration;

fn suite_with(rt: RuntimeUnderTest) {
    let d = match Docker::setup(&rt) {
        Ok(d) => d,
        Err(why) => return berth_integration::engines::skip_or_fail("docker", &why),
    };
    suite::run("docker", &rt, &d, SCENARIOS);
}

#[test]
fn docker_with_runc() {
    suite_with(RuntimeUnderTest::runc());
}

#[test]
fn docker_with_berth() {
    suite_with(RuntimeUnderTest::berth());
}

const SCENARIOS: &[Scenario<Docker>] = &[
    ("info_runtime_version", info_runtime_version),
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
    ("memory_limit", memory_limit),
    ("update_memory", update_memory),
    ("pids_limit", pids_limit),
    ("cpus", compat::cpus),
    ("read_only_tmpfs", compat::read_only_tmpfs),
    ("cap_add_drop", cap_add_drop),
    ("init", init),
    ("restart_policy", restart_policy),
    ("seccomp", seccomp),
];

/// `docker info` runs the default runtime's `--version` and shows its commit.
fn info_runtime_version(d: &Docker) {
    let out = d.ok(&["info", "--format", "{{.DefaultRuntime}}|{{.RuncCommit.ID}}|{{json .Runtimes}}"]);
    let f: Vec<&str> = out.trim().splitn(3, '|').collect();
    assert_eq!(f[0], d.runtime_name, "{out}");
    let v = berth_integration::procs::output(std::process::Command::new(&d.rt.bin).arg("--version")).expect("runtime --version");
    let text = String::from_utf8_lossy(&v.stdout).into_owned();
    let commit = text.lines().find_map(|l| l.strip_prefix("commit:")).map(str::trim).unwrap_or("");
    assert!(!commit.is_empty(), "no commit line in {} --version: {text}", d.rt.name);
    assert_eq!(f[1], commit, "docker info did not read the commit from `{} --version` ({text:?}): {out}", d.rt.name);
    assert!(f[2].contains(&*d.wrapper.path.to_string_lossy()), "{out}");
    let calls = d.wrapper.all_calls();
    assert!(calls.iter().any(|c| c.argv == "'--version'" && c.exit == Some(0)), "dockerd never ran --version: {calls:?}");
}

/// dockerd maps the runtime's error words to 127 (not found) and 126 (not executable).
fn run_not_found_126_127(d: &Docker) {
    let o = d.docker(&["run", "--rm", &d.image, "/no/such/binary"]);
    assert_eq!(o.code(), 127, "{}", o.describe());
    assert!(o.stderr.contains("no such file or directory"), "{}", o.describe());
    let o = d.docker(&["run", "--rm", &d.image, "no-such-command-in-path"]);
    assert_eq!(o.code(), 127, "{}", o.describe());
    assert!(o.stderr.contains("executable file not found"), "{}", o.describe());
    let o = d.docker(&["run", "--rm", &d.image, "/etc/passwd"]);
    assert_eq!(o.code(), 126, "{}", o.describe());
    assert!(o.stderr.contains("permission denied"), "{}", o.describe());
    let name = unique("nf");
    d.run_detached(&name, &[], LONG);
    // docker 20.10 exits 126 for any failed exec, and prints the runtime's error on stdout.
    let o = d.docker(&["exec", &name, "/no/such/binary"]);
    assert_eq!(o.code(), 126, "{}", o.describe());
    assert!(format!("{}{}", o.stdout, o.stderr).contains("no such file or directory"), "{}", o.describe());
}

/// `run -it`: a terminal in the container (the shim's --console-socket).
fn run_it(d: &Docker) {
    let o = d.pty(&["run", "-it", "--rm", &d.image, "sh"], &[expect("# "), send("tty; echo $((6*7))-ok; exit 3\r")]);
    assert_eq!(o.code(), 3, "{}", o.describe());
    assert!(o.text.contains("42-ok"), "{}", o.describe());
    assert!(o.text.contains("/dev/pts/"), "no pty in the container: {}", o.describe());
}

/// `run -d`: running, output in `logs`, the pid alive on the host, under our cgroup parent.
fn run_detached_logs(d: &Docker) {
    let name = unique("det");
    let id = d.run_detached(&name, &[], "echo hello-detached; exec sleep 1000");
    assert_eq!(id.len(), 64, "{id}");
    d.wait_log(&name, "hello-detached");
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(d.inspect(&name, "{{.HostConfig.Runtime}}"), d.runtime_name);
    let pid = d.pid(&name);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim(), "sleep");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&format!("{}/{id}", d.cgroup_parent)), "not in {}/{id}: {cg}", d.cgroup_parent);
}

/// `exec`: exit code, env, user, workdir; in the container's pid namespace.
fn exec(d: &Docker) {
    let name = unique("exec");
    d.run_detached(&name, &[], LONG);
    let o = d.docker(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(o.code(), 5, "{}", o.describe());
    assert!(o.stdout.contains("in-exec"), "{}", o.describe());
    let out = d.ok(&["exec", "-e", "E2E_VAR=exec-env", "-u", "1000:1000", "-w", "/tmp", &name, "sh", "-c", "echo $E2E_VAR; id -u; id -g; pwd"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["exec-env", "1000", "1000", "/tmp"], "{out}");
    assert_eq!(d.ok(&["exec", &name, "cat", "/proc/1/comm"]).trim(), "sleep");
}

/// `top` (the runtime's `ps --format json`).
fn top(d: &Docker) {
    let name = unique("top");
    d.run_detached(&name, &[], "sleep 1001 & echo started; wait");
    d.wait_log(&name, "started");
    let out = d.ok(&["top", &name]);
    assert!(out.contains("sleep 1001"), "{out}");
    let pid = d.pid(&name);
    assert!(out.lines().any(|l| l.split_whitespace().nth(1) == Some(&*pid.to_string())), "the init {pid} is not listed: {out}");
}

/// `create` + `start`, `restart`, `stop` + `start`.
fn start_restart(d: &Docker) {
    let name = unique("restart");
    d.ok(&["create", "--name", &name, &d.image, "sh", "-c", "echo run-$RANDOM; exec sleep 1000"]);
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "created");
    d.ok(&["start", &name]);
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "running");
    let pid1 = d.pid(&name);
    d.ok(&["restart", "-t", "1", &name]);
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "running");
    assert_ne!(pid1, d.pid(&name), "restart kept the same process");
    d.ok(&["stop", "-t", "1", &name]);
    d.ok(&["start", &name]);
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "running");
    let n = poll(Duration::from_secs(10), "three runs in the log", || {
        let k = d.ok(&["logs", &name]).lines().filter(|l| l.starts_with("run-")).count();
        (k >= 3).then_some(k)
    });
    assert_eq!(n, 3);
}

/// `rm -f` of a running container: the process, the runtime's state and the cgroup go.
fn rm_running(d: &Docker) {
    let name = unique("rm");
    let id = d.run_detached(&name, &[], LONG);
    let pid = d.pid(&name);
    let cg = cgroup::dir_of(pid, "pids").expect("pids cgroup");
    // dockerd gives every runtime of the runc shim --root <exec-root>/runtime-runc/moby.
    let state = d.exec_root.join("runtime-runc").join("moby").join(&id);
    assert!(state.exists(), "no runtime state at {} (where dockerd's --root points)", state.display());
    d.ok(&["rm", "-f", &name]);
    assert!(!d.docker(&["inspect", &name]).success(), "still there after rm");
    poll(Duration::from_secs(10), "the container's process to go", || (!berth_integration::procs::alive(pid)).then_some(()));
    assert!(!state.exists(), "the runtime still has state at {}", state.display());
    poll(Duration::from_secs(10), "the cgroup to go", || (!cg.exists()).then_some(()));
}

/// `--user`, `--workdir`, `-e`.
fn user_workdir_env(d: &Docker) {
    let o = d.docker(&[
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
        &d.image,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo \"$E2E_A|$E2E_B\"",
    ]);
    o.ok();
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), ["1000", "1001", "/home/test", "alpha|with space"], "{}", o.describe());
    let o = d.docker(&["run", "--rm", "--user", "nobody", &d.image, "id", "-un"]);
    assert_eq!(o.stdout.trim(), "nobody", "{}", o.describe());
}

/// The default bridge: dockerd configures the container's eth0 from its prestart hook
/// (libnetwork-setkey), which the runtime must run.
fn bridge_network(d: &Docker) {
    let o = d.docker(&[
        "run",
        "--rm",
        &d.image,
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; gw=$(ip route | awk '/default/ {print $3}'); ping -c 1 -W 5 $gw >/dev/null && echo gw-ok",
    ]);
    o.ok();
    assert!(o.stdout.contains("inet 172.17."), "eth0 has no address on docker0's subnet: {}", o.describe());
    assert!(o.stdout.contains("default via"), "{}", o.describe());
    assert!(o.stdout.contains("gw-ok"), "the gateway does not answer: {}", o.describe());
    let calls = d.wrapper.all_calls();
    let create = calls.iter().rev().find(|c| c.subcommand() == "create").expect("a create call");
    let bundle = create.argv.split("' '").skip_while(|w| !w.ends_with("--bundle")).nth(1).map(|w| w.trim_matches('\'').to_string()).unwrap_or_default();
    assert!(!bundle.is_empty(), "no --bundle in {}", create.argv);
}

/// `-p HOST:80` through docker-proxy.
fn publish_port(d: &Docker) {
    let name = unique("web");
    let port = net::port(2);
    let map = format!("{port}:80");
    d.run_detached(&name, &["-p", &map], "echo web-$HOSTNAME > /var/www/index.html; exec httpd -f -p 80 -h /var/www");
    let r = d.netns.http_get(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.contains("200 OK") && r.contains("web-"), "{r}");
    let proxies: Vec<String> = berth_integration::procs::all_pids()
        .into_iter()
        .filter_map(berth_integration::procs::cmdline)
        .filter(|c| c.contains("docker-proxy") && c.contains(&format!("-host-port {port}")))
        .collect();
    assert!(!proxies.is_empty(), "no docker-proxy for port {port}");
}

/// `-m`.
fn memory_limit(d: &Docker) {
    let name = unique("mem");
    d.run_detached(&name, &["-m", "64m"], LONG);
    assert_eq!(cgroup::read(d.pid(&name), "memory", "memory.limit_in_bytes", "memory.max"), "67108864");
}

/// `update -m`: dockerd sends `update --resources -` with the JSON on stdin.
fn update_memory(d: &Docker) {
    let name = unique("upd");
    d.run_detached(&name, &["-m", "64m", "--memory-swap", "256m"], LONG);
    let pid = d.pid(&name);
    let mark = d.wrapper.mark();
    d.ok(&["update", "-m", "128m", "--memory-swap", "256m", &name]);
    assert_eq!(cgroup::read(pid, "memory", "memory.limit_in_bytes", "memory.max"), "134217728");
    let calls = d.wrapper.calls_since(mark);
    let up = calls.iter().find(|c| c.subcommand() == "update").unwrap_or_else(|| panic!("no update call: {calls:?}"));
    let stdin = up.stdin.as_ref().map(|f| std::fs::read_to_string(f).unwrap_or_default()).unwrap_or_default();
    assert!(stdin.contains("134217728"), "update's stdin: {stdin}");
    assert_eq!(d.inspect(&name, "{{.HostConfig.Memory}}"), "134217728");
}

/// `--pids-limit`.
fn pids_limit(d: &Docker) {
    let name = unique("pids");
    d.run_detached(&name, &["--pids-limit", "20"], LONG);
    let pid = d.pid(&name);
    assert_eq!(cgroup::read(pid, "pids", "pids.max", "pids.max"), "20");
    let _ = d.docker(&["exec", &name, "sh", "-c", "for i in $(seq 1 40); do sleep 30 & done; wait 2>/dev/null"]);
    let current: u64 = cgroup::read(pid, "pids", "pids.current", "pids.current").parse().unwrap_or(0);
    assert!(current <= 20, "pids.current {current} above the limit");
}

/// `--cap-drop`/`--cap-add`.
fn cap_add_drop(d: &Docker) {
    let o = d.docker(&["run", "--rm", "--cap-drop", "CHOWN", &d.image, "sh", "-c", "grep Cap /proc/self/status; chown 1000 /tmp && echo chown-worked"]);
    assert_eq!(cap_mask(&o.stdout, "CapEff") & (1 << CAP_CHOWN), 0, "CHOWN still effective: {}", o.describe());
    assert!(!o.stdout.contains("chown-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",
        &d.image,
        "sh",
        "-c",
        "grep Cap /proc/self/status; ip link set lo mtu 1280 && echo netadmin-worked",
    ]);
    o.ok();
    assert_ne!(cap_mask(&o.stdout, "CapEff") & (1 << CAP_NET_ADMIN), 0, "NET_ADMIN not effective: {}", o.describe());
    assert!(o.stdout.contains("netadmin-worked"), "{}", o.describe());
    let o = d.docker(&["run", "--rm", "--network", "none", &d.image, "sh", "-c", "ip link set lo mtu 1280 && echo netadmin-worked"]);
    assert!(!o.stdout.contains("netadmin-worked"), "{}", o.describe());
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.describe());
}

/// `--init`: docker-init (tini) is PID 1 at /sbin/docker-init.
fn init(d: &Docker) {
    let o = d.docker(&["run", "--rm", "--init", &d.image, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo pid=$$; exit 9"]);
    assert_eq!(o.code(), 9, "{}", o.describe());
    assert!(o.stdout.starts_with("/sbin/docker-init -- sh"), "PID 1 is not the init: {}", o.describe());
}

/// `--restart on-failure:2`: dockerd restarts the failing container twice through the
/// runtime, then leaves it exited.
fn restart_policy(d: &Docker) {
    let name = unique("restartpol");
    d.ok(&["run", "-d", "--name", &name, "--restart", "on-failure:2", &d.image, "sh", "-c", "echo attempt; exit 3"]);
    poll(Duration::from_secs(60), "two restarts and a final exit", || {
        let s = d.inspect(&name, "{{.RestartCount}}|{{.State.Status}}|{{.State.ExitCode}}");
        (s == "2|exited|3").then_some(())
    });
    let n = d.ok(&["logs", &name]).lines().filter(|l| *l == "attempt").count();
    assert_eq!(n, 3, "three runs expected");
}

/// seccomp: the shared checks (default profile, our mkdir-ENOSYS profile, unconfined),
/// and dockerd's default profile refuses unshare.
fn seccomp(d: &Docker) {
    compat::seccomp_profiles(d);
    let o = d.docker(&["run", "--rm", &d.image, "sh", "-c", "unshare -U true && echo unshare-worked"]);
    assert!(!o.stdout.contains("unshare-worked"), "the default profile let unshare through: {}", o.describe());
}
