//! dockerd (Debian's docker.io 20.10) using the runtime under test: registered with
//! `runtimes` in its daemon.json (as `--add-runtime NAME=<wrapper>` does) and made the
//! default runtime, so that `docker info` reads its `--version`; `docker run --runtime
//! NAME` names it too.
//!
//! dockerd gets its own data root, exec root, pidfile, socket, trust-key path, cgroup
//! parent (with systemd's driver, `native.cgroupdriver=systemd`, a slice of ours where
//! each container is a scope `docker-ID.scope`) and a containerd of our own (`--containerd`: the one dockerd would start puts
//! its opt dir in /opt/containerd); it runs in the suite's network namespace, where it
//! makes its docker0 bridge and iptables rules, and `-p` goes through docker-proxy.
//! The docker 20.10 client (/usr/bin/docker) talks to it with its own config dir.

use super::cgroup::{Driver, Parent};
use super::cli::Cli;
use super::daemon::Daemon;
use super::net::NetNs;
use super::wrapper::Wrapper;
use super::{image, RuntimeUnderTest};
use crate::runtime::Output;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The client of the same version (a newer one may be first in PATH).
pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKER_PROXY: &str = "/usr/sbin/docker-proxy";

pub struct Docker {
    pub rt: RuntimeUnderTest,
    pub dir: PathBuf,
    pub netns: NetNs,
    pub wrapper: Wrapper,
    /// `docker -H unix://..`, in the netns.
    pub cli: Cli,
    /// The name the runtime is registered under (`runc` is reserved by dockerd).
    pub runtime_name: String,
    /// `cgroup-parent`.
    pub cgroups: Parent,
    pub image: String,
    pub exec_root: PathBuf,
    dockerd: Option<Daemon>,
    containerd: Option<Daemon>,
}

impl Docker {
    pub fn setup(rt: &RuntimeUnderTest) -> Result<Docker, String> {
        super::remove_stale();
        crate::procs::init();
        if let Some(b) = super::missing_binary(&[DOCKERD, DOCKER, DOCKER_PROXY, super::containerd::CONTAINERD, super::containerd::SHIM]) {
            return Err(format!("{b} is not installed (apt-get install docker.io containerd)"));
        }
        let dir = super::work_dir("docker", rt.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let netns = NetNs::new()?;
        let wrapper = Wrapper::new(&dir.join("wrap"), rt.name, &rt.bin);
        let runtime_name = if rt.name == "runc" { "runc-e2e".to_string() } else { rt.name.to_string() };
        let cgroups = Parent::new("docker", rt.name);
        let ctd_sock = dir.join("containerd.sock");
        let containerd = super::containerd::start_daemon(&dir, &netns, &ctd_sock, &format!("dockerd's containerd with {}", rt.name))?;
        let sock = dir.join("docker.sock");
        let mut conf = daemon_config(&dir, &sock, &ctd_sock);
        let own = serde_json::json!({
            "cgroup-parent": cgroups.name,
            // dockerd gives the runc shim SystemdCgroup with it (the runtime gets
            // --systemd-cgroup and `SLICE:docker:ID` cgroups paths).
            "exec-opts": [format!("native.cgroupdriver={}", Driver::get().name())],
            "runtimes": {runtime_name.clone(): {"path": wrapper.path}},
            "default-runtime": runtime_name,
            "userland-proxy": true,
        });
        merge(&mut conf, own);
        let exec_root = dir.join("exec");
        let conf_path = dir.join("daemon.json");
        std::fs::write(&conf_path, serde_json::to_string_pretty(&conf).unwrap()).map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(DOCKERD);
        cmd.arg("--config-file").arg(&conf_path);
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{path}"));
        let mut dockerd = Daemon::start("dockerd", cmd, netns.raw(), &dir.join("dockerd.log"))?;
        let mut cli = Cli::new(DOCKER, &dir.join("cli"));
        cli.base_args = vec!["-H".into(), format!("unix://{}", sock.display())];
        cli.env.push(("DOCKER_CONFIG".into(), dir.join("client-config").to_string_lossy().into_owned()));
        cli.netns = Some(netns.raw());
        let probe = cli.clone();
        dockerd.wait_ready(Duration::from_secs(90), || {
            sock.exists() && probe.try_run(&["version"], Duration::from_secs(20)).map(|o| o.success()).unwrap_or(false)
        })?;
        let d = Docker {
            rt: rt.clone(),
            dir: dir.clone(),
            netns,
            wrapper,
            cli,
            runtime_name,
            cgroups,
            image: image::REF.to_string(),
            exec_root,
            dockerd: Some(dockerd),
            containerd: Some(containerd),
        };
        let img = image::Image::build(&dir)?;
        let o = d.cli.run(&["import", &img.tar.to_string_lossy(), image::REF]);
        if !o.success() {
            return Err(format!("docker import failed:\n{}", o.describe()));
        }
        Ok(d)
    }

    /// dockerd keeps nothing below the parent once its containers are gone.
    fn kept_by_design(_: &Parent) -> &'static [&'static str] {
        &[]
    }

    /// `docker ARGS`, with `--runtime NAME` added to `run` and `create`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&str> = Vec::new();
        if let Some((first, rest)) = args.split_first() {
            v.push(first);
            if *first == "run" || *first == "create" {
                v.push("--runtime");
                v.push(&self.runtime_name);
            }
            v.extend_from_slice(rest);
        }
        v
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.cli.run(&self.args(args))
    }

    pub fn remove_all(&self) -> Result<(), String> {
        let o = self.cli.try_run(&["ps", "-aq"], Duration::from_secs(60))?;
        let ids: Vec<&str> = o.stdout.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut a = vec!["rm", "-f"];
        a.extend(ids);
        let o = self.cli.try_run(&a, Duration::from_secs(45))?;
        if !o.success() {
            return Err(format!("docker rm -f failed:\n{}", o.describe()));
        }
        Ok(())
    }

    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        super::suite::Engine::after_scenario(self);
        if let Some(mut d) = self.dockerd.take() {
            d.stop(Duration::from_secs(30));
        }
        if let Some(mut d) = self.containerd.take() {
            d.stop(Duration::from_secs(20));
        }
        problems.extend(self.cgroups.teardown());
        if let Err(e) = super::daemon::remove_dir(&self.dir) {
            problems.push(e);
        }
        problems
    }
}

/// The daemon.json keys that keep a dockerd of ours to itself: data root `dir/data`,
/// exec root `dir/exec`, pidfile, trust key, socket `sock`, our containerd at
/// `ctd_sock`, overlay2 and json-file. Shared with the bench, which starts dockerd
/// itself (the harness's [`Daemon`] reaps on a thread, which the bench cannot have).
pub fn daemon_config(dir: &Path, sock: &Path, ctd_sock: &Path) -> serde_json::Value {
    serde_json::json!({
        "data-root": dir.join("data"),
        "exec-root": dir.join("exec"),
        "pidfile": dir.join("dockerd.pid"),
        "hosts": [format!("unix://{}", sock.display())],
        "containerd": ctd_sock,
        "deprecated-key-path": dir.join("key.json"),
        // Root has no CAP_SYS_RESOURCE here and a hard RLIMIT_NOFILE of 20000.
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 1024}},
        "storage-driver": "overlay2",
        "log-driver": "json-file",
    })
}

/// Adds (or replaces) the keys of `more` in `conf`.
pub fn merge(conf: &mut serde_json::Value, more: serde_json::Value) {
    if let (Some(c), serde_json::Value::Object(m)) = (conf.as_object_mut(), more) {
        c.extend(m);
    }
}

super::compat::impl_docker_cli!(Docker, docker);

impl super::suite::Engine for Docker {
    fn wrapper(&self) -> &Wrapper {
        &self.wrapper
    }
    fn after_scenario(&self) {
        if let Err(e) = self.remove_all() {
            eprintln!("berth-e2e: docker/{}: cleanup after scenario: {e}", self.rt.name);
            // A container wedged in a runtime call: kill its processes, then try again.
            let n = self.cgroups.kill_all();
            eprintln!("berth-e2e: docker/{}: killed {n} process(es) left in our cgroups", self.rt.name);
            if let Err(e) = self.remove_all() {
                eprintln!("berth-e2e: docker/{}: cleanup after scenario (2nd try): {e}", self.rt.name);
            }
        }
    }
    fn daemon_logs(&self) -> Vec<(&'static str, PathBuf)> {
        let mut v = Vec::new();
        if let Some(d) = &self.dockerd {
            v.push(("dockerd", d.log.clone()));
        }
        if let Some(d) = &self.containerd {
            v.push(("containerd", d.log.clone()));
        }
        v
    }
    fn work_dir(&self) -> PathBuf {
        self.dir.clone()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let problems = self.teardown();
        super::suite::teardown_problems("docker", self.rt.name, problems);
    }
}
