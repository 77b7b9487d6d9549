//! The builder section's third subject, "buildkit": BuildKit as Debian's dockerd 20.10
//! embeds it, driven by the docker 20.10 client (`DOCKER_BUILDKIT=1 docker -H
//! unix://SOCK build`). BuildKit runs RUN steps with runc itself (its runc executor, the
//! `runc` in dockerd's PATH), not through containerd: that is the reference.
//!
//! The daemons are laid out as the engine suites lay them out (the library's
//! `engines::containerd::write_config` and `engines::docker::daemon_config`: data root,
//! exec root, pidfile, sockets and a containerd of their own, all in the bench's temp
//! dir, in a network namespace of their own). They are started and stopped (by pid) here
//! rather than with the library's `Daemon`, because that one reaps from a thread, which
//! would take the exits (and rusage) of the bench's timed commands. Containers' cgroups
//! go under the bench's cgroup parent (cgroupfs driver), which the bench's cleanup
//! removes.
//!
//! Cost of a build: the client does little, so its rusage alone would hide BuildKit's
//! work. The figures of a docker command add the CPU dockerd and containerd used
//! meanwhile (their own and that of the children they reaped, runc and the RUN steps:
//! /proc/PID/stat utime, stime, cutime, cstime), and its peak RSS is the larger of the
//! client's and dockerd's peak during the command (VmHWM, reset through clear_refs
//! before it).

use super::procs::Exit;
use super::{Ctx, Result};
use berth_integration::engines::{cli, containerd, docker, net::NetNs};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_GRACE: Duration = Duration::from_secs(30);

pub struct Dockerd {
    dir: PathBuf,
    sock: PathBuf,
    dockerd: Option<i32>,
    containerd: Option<i32>,
    // Held until both daemons are gone; closing it lets the namespace (docker0, its
    // iptables rules) go away with them.
    netns: NetNs,
}

/// Why the buildkit subject cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    for b in [docker::DOCKERD, docker::DOCKER, containerd::CONTAINERD, "/usr/sbin/runc"] {
        if !Path::new(b).exists() {
            return Some(format!("{b} is missing (apt-get install docker.io containerd runc)"));
        }
    }
    None
}

/// A daemon's command: stdin /dev/null, output to `log`, in `netns`, SIGTERM if the
/// bench dies first.
fn daemon_command(bin: &str, args: &[&OsStr], netns: &NetNs, log: &Path) -> Result<Command> {
    let f = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).stdout(f).stderr(f2);
    // The runc BuildKit runs is the one found in PATH.
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{path}"));
    cli::prepare(&mut cmd, Some(netns.raw()), Vec::new(), true);
    Ok(cmd)
}

fn log_tail(p: &Path) -> String {
    let t = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// (user, sys) CPU in ms of `pid` and the children it reaped.
fn proc_cpu_ms(pid: i32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces: state is field 3.
    let f: Vec<f64> = s.rsplit_once(") ").map(|(_, r)| r.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect()).unwrap_or_default();
    // SAFETY: sysconf with a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let at = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) * 1e3 / hz;
    (at(14) + at(16), at(15) + at(17))
}

fn vm_hwm_kb(pid: i32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0.0)
}

fn add_ms(t: libc::timeval, ms: f64) -> libc::timeval {
    let us = (t.tv_sec as f64 * 1e6 + t.tv_usec as f64 + ms.max(0.0) * 1e3).round() as i64;
    libc::timeval { tv_sec: (us / 1_000_000) as libc::time_t, tv_usec: (us % 1_000_000) as libc::suseconds_t }
}

impl Dockerd {
    /// Starts containerd, then dockerd, under `dir`; returns once `docker version`
    /// answers. What it started is stopped again if it fails.
    pub fn start(ctx: &mut Ctx, dir: &Path) -> Result<Dockerd> {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let netns = NetNs::bare()?;
        let mut d = Dockerd { dir: dir.to_path_buf(), sock: dir.join("docker.sock"), dockerd: None, containerd: None, netns };
        match d.start_daemons(ctx) {
            Ok(()) => Ok(d),
            Err(e) => {
                d.stop(ctx);
                Err(e)
            }
        }
    }

    fn start_daemons(&mut self, ctx: &mut Ctx) -> Result<()> {
        let fd = self.netns.raw();
        let mut lo = ctx.command(Path::new("ip"), None, &["link", "set", "lo", "up"], "bk-lo", false)?;
        // SAFETY: setns is async-signal-safe; the forked child is single-threaded.
        unsafe {
            lo.pre_exec(move || if libc::setns(fd, libc::CLONE_NEWNET) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) });
        }
        let pid = ctx.procs.spawn(&mut lo)?;
        let e = ctx.procs.wait(pid, super::TIMEOUT)?;
        if !e.success() {
            return Err(ctx.describe_failure("ip link set lo up in dockerd's netns", "bk-lo", &e));
        }

        let ctd_sock = self.dir.join("containerd.sock");
        let conf = containerd::write_config(&self.dir, &ctd_sock, "the bench's dockerd (BuildKit)")?;
        let log = self.dir.join("containerd.log");
        let mut cmd = daemon_command(containerd::CONTAINERD, &["--config".as_ref(), conf.as_os_str()], &self.netns, &log)?;
        self.containerd = Some(ctx.procs.spawn(&mut cmd)?);
        self.wait_until(ctx, "containerd", &log, |_| ctd_sock.exists())?;

        let mut conf = docker::daemon_config(&self.dir, &self.sock, &ctd_sock);
        docker::merge(
            &mut conf,
            serde_json::json!({
                // Below the bench's parent, which exists in every hierarchy and goes at cleanup.
                "cgroup-parent": format!("/{}", ctx.cg_parent),
                "exec-opts": ["native.cgroupdriver=cgroupfs"],
            }),
        );
        let conf_path = self.dir.join("daemon.json");
        let text = serde_json::to_string_pretty(&conf).map_err(|e| e.to_string())?;
        std::fs::write(&conf_path, text).map_err(|e| format!("write {}: {e}", conf_path.display()))?;
        let log = self.dir.join("dockerd.log");
        let mut cmd = daemon_command(docker::DOCKERD, &["--config-file".as_ref(), conf_path.as_os_str()], &self.netns, &log)?;
        self.dockerd = Some(ctx.procs.spawn(&mut cmd)?);
        let sock = self.sock.clone();
        self.wait_until(ctx, "dockerd", &log, |ctx| {
            sock.exists()
                && (|| -> Result<bool> {
                    let mut c = self.client(ctx, &["version"], "bk-version")?;
                    let pid = ctx.procs.spawn(&mut c)?;
                    Ok(ctx.procs.wait(pid, Duration::from_secs(20))?.success())
                })()
                .unwrap_or(false)
        })
    }

    /// Polls `ready` until it holds; fails if the daemon (the last one started) exited.
    fn wait_until(&self, ctx: &mut Ctx, name: &str, log: &Path, mut ready: impl FnMut(&mut Ctx) -> bool) -> Result<()> {
        let pid = if name == "dockerd" { self.dockerd } else { self.containerd }.ok_or("not started")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready(ctx) {
                return Ok(());
            }
            if let Some(e) = ctx.procs.take(pid) {
                return Err(format!("{name} exited during startup ({}); its log ends:\n{}", e.describe(), log_tail(log)));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} not ready after {START_TIMEOUT:?}; its log ends:\n{}", log_tail(log)));
            }
            ctx.procs.sleep(Duration::from_millis(100))?;
        }
    }

    /// `docker -H unix://SOCK ARGS` with BuildKit on and a client config dir of its own.
    pub fn client(&self, ctx: &Ctx, args: &[&str], slot: &str) -> Result<Command> {
        let host = format!("unix://{}", self.sock.display());
        let mut argv = vec!["-H", &host];
        argv.extend_from_slice(args);
        let mut cmd = ctx.command(Path::new(docker::DOCKER), None, &argv, slot, false)?;
        cmd.env("DOCKER_BUILDKIT", "1").env("DOCKER_CONFIG", self.dir.join("client-config"));
        Ok(cmd)
    }

    /// Runs a docker command to completion and fails unless it exits 0. Its figures
    /// include the daemons' work meanwhile (see the module's comment).
    pub fn run(&self, ctx: &mut Ctx, args: &[String], slot: &str, timeout: Duration) -> Result<Exit> {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.client(ctx, &argv, slot)?;
        let daemons: Vec<i32> = self.dockerd.iter().chain(self.containerd.iter()).copied().collect();
        let before: Vec<(f64, f64)> = daemons.iter().map(|p| proc_cpu_ms(*p)).collect();
        if let Some(p) = self.dockerd {
            // "5" resets the peak RSS (VmHWM) to the current RSS.
            let _ = std::fs::write(format!("/proc/{p}/clear_refs"), "5");
        }
        let pid = ctx.procs.spawn(&mut cmd)?;
        let mut e = ctx.procs.wait(pid, timeout)?;
        if !e.success() {
            return Err(ctx.describe_failure(&format!("docker {}", args.join(" ")), slot, &e));
        }
        for (p, (u0, s0)) in daemons.iter().zip(before) {
            let (u1, s1) = proc_cpu_ms(*p);
            e.ru.ru_utime = add_ms(e.ru.ru_utime, u1 - u0);
            e.ru.ru_stime = add_ms(e.ru.ru_stime, s1 - s0);
        }
        if let Some(p) = self.dockerd {
            e.ru.ru_maxrss = e.ru.ru_maxrss.max(vm_hwm_kb(p) as libc::c_long);
        }
        Ok(e)
    }

    /// SIGTERM to dockerd, then containerd, each waited for (SIGKILL after a grace
    /// period). Never fails: the bench's cleanup kills what is left below it.
    pub fn stop(&mut self, ctx: &mut Ctx) {
        for pid in [self.dockerd.take(), self.containerd.take()].into_iter().flatten() {
            // SAFETY: kill(2) of a daemon the bench spawned, by pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            // Procs::wait sends SIGKILL to its own child at the timeout; a second wait
            // reaps it then.
            if ctx.procs.wait(pid, STOP_GRACE).is_err() {
                let _ = ctx.procs.wait(pid, Duration::from_secs(10));
            }
        }
    }
}
