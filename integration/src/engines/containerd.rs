//! containerd 1.6 with its runc shim v2 using the runtime under test, driven by `ctr`:
//! `ctr run --runtime io.containerd.runc.v2 --runc-binary <wrapper> --runc-root <dir>`.
//!
//! The daemon gets its own root, state, gRPC and ttrpc sockets, opt dir and a config
//! without the CRI plugin (nor the snapshotters that cannot work here); it runs in the
//! suite's network namespace, so `--net-host` means that namespace. Containers live in a
//! containerd namespace named like the suite's cgroup parent, so that ctr's default
//! cgroup path (`/<namespace>/<id>`) lands there; with systemd's driver, ctr gives the
//! shim `SystemdCgroup` (`--runc-systemd-cgroup`, so the runtime gets `--systemd-cgroup`)
//! and the container the cgroups path `SLICE:ctr:ID` (`--cgroup`), a scope `ctr-ID.scope`
//! in our slice. ctr's IO fifos go to the work dir.
//! Left outside it: the shims' sockets in /run/containerd/s (hard-wired in 1.6; named
//! after our daemon's address, removed by the shims when they exit).

use super::cgroup::Parent;
use super::cli::Cli;
use super::daemon::Daemon;
use super::net::NetNs;
use super::wrapper::Wrapper;
use super::{image, RuntimeUnderTest};
use crate::runtime::Output;
use std::path::PathBuf;
use std::time::Duration;

pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";
pub const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

pub struct Containerd {
    pub rt: RuntimeUnderTest,
    pub dir: PathBuf,
    pub netns: NetNs,
    pub wrapper: Wrapper,
    /// `ctr --address .. --namespace ..`, in the netns.
    pub cli: Cli,
    pub namespace: String,
    /// `/<namespace>`, or with systemd the slice given in `--cgroup`.
    pub cgroups: Parent,
    pub image: String,
    /// `--runc-root`; the shim runs the runtime with `--root <runc_root>/<namespace>`.
    pub runc_root: PathBuf,
    pub fifo_dir: PathBuf,
    daemon: Option<Daemon>,
}

impl Containerd {
    pub fn setup(rt: &RuntimeUnderTest) -> Result<Containerd, String> {
        super::remove_stale();
        crate::procs::init();
        if let Some(b) = super::missing_binary(&[CONTAINERD, CTR, SHIM]) {
            return Err(format!("{b} is not installed (apt-get install containerd)"));
        }
        let dir = super::work_dir("containerd", rt.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let netns = NetNs::new()?;
        let wrapper = Wrapper::new(&dir.join("wrap"), rt.name, &rt.bin);
        let sock = dir.join("containerd.sock");
        let cgroups = Parent::new("containerd", rt.name);
        let namespace = super::work_dir("containerd", rt.name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut cli = Cli::new(CTR, &dir.join("cli"));
        cli.base_args = vec!["--address".into(), sock.to_string_lossy().into_owned(), "--namespace".into(), namespace.clone()];
        cli.netns = Some(netns.raw());
        let daemon = start_daemon(&dir, &netns, &sock, &format!("containerd with {}", rt.name))?;
        let runc_root = dir.join("runtime-root");
        let fifo_dir = dir.join("fifo");
        std::fs::create_dir_all(&fifo_dir).map_err(|e| e.to_string())?;
        let c = Containerd {
            rt: rt.clone(),
            dir: dir.clone(),
            netns,
            wrapper,
            cli,
            namespace,
            cgroups,
            image: image::REF.to_string(),
            runc_root,
            fifo_dir,
            daemon: Some(daemon),
        };
        let img = image::Image::build(&dir)?;
        let oci = img.oci_archive(&dir)?;
        let o = c.cli.run(&["images", "import", &oci.to_string_lossy()]);
        if !o.success() {
            return Err(format!("ctr images import failed:\n{}", o.describe()));
        }
        Ok(c)
    }

    /// The runtime's `--root`: where it keeps each container's state.
    pub fn state_root(&self) -> PathBuf {
        self.runc_root.join(&self.namespace)
    }

    /// The arguments that make `ctr run` of container `id` use the runtime under test,
    /// with the cgroup driver in use.
    fn runtime_flags(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--runtime".into(),
            "io.containerd.runc.v2".into(),
            "--runc-binary".into(),
            self.wrapper.path.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runc_root.to_string_lossy().into_owned(),
            "--fifo-dir".into(),
            self.fifo_dir.to_string_lossy().into_owned(),
        ];
        if let Some(slice) = self.cgroups.slice() {
            v.extend(["--runc-systemd-cgroup".into(), "--cgroup".into(), format!("{slice}:ctr:{id}")]);
        }
        v
    }

    /// `ctr run [runtime flags] FLAGS IMAGE ID CMD...`
    pub fn run_args(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into()];
        a.extend(self.runtime_flags(id));
        a.extend(flags.iter().map(|s| s.to_string()));
        a.push(self.image.clone());
        a.push(id.to_string());
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    pub fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
        let a = self.run_args(flags, id, cmd);
        let r: Vec<&str> = a.iter().map(String::as_str).collect();
        self.cli.run(&r)
    }

    /// `ctr run -d` of `sh -c SCRIPT`, output to `<dir>/<id>.log`; returns the task's pid.
    #[track_caller]
    pub fn run_detached(&self, flags: &[&str], id: &str, script: &str) -> i32 {
        let log = format!("file://{}", self.log_path(id).display());
        let mut f: Vec<&str> = vec!["-d", "--log-uri", &log];
        f.extend_from_slice(flags);
        self.run(&f, id, &["sh", "-c", script]).ok();
        self.task_pid(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// Waits until the detached task's log contains `text`.
    #[track_caller]
    pub fn wait_log(&self, id: &str, text: &str) -> String {
        let p = self.log_path(id);
        super::poll(Duration::from_secs(30), &format!("{text:?} in {}", p.display()), || {
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            t.contains(text).then_some(t)
        })
    }

    /// `ctr ARGS`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.cli.run(args)
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.cli.ok(args)
    }

    /// `ctr tasks exec --exec-id E [FLAGS] ID CMD...`
    pub fn exec_args(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
        let mut a: Vec<String> =
            vec!["tasks".into(), "exec".into(), "--fifo-dir".into(), self.fifo_dir.to_string_lossy().into_owned(), "--exec-id".into(), super::unique("exec")];
        a.extend(flags.iter().map(|s| s.to_string()));
        a.push(id.to_string());
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    pub fn exec(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
        let a = self.exec_args(flags, id, cmd);
        let r: Vec<&str> = a.iter().map(String::as_str).collect();
        self.cli.run(&r)
    }

    /// (pid, status) of a task from `ctr tasks ls`.
    pub fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.cli.run(&["tasks", "ls"]).stdout;
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0), f.get(2).unwrap_or(&"").to_string()))
        })
    }

    #[track_caller]
    pub fn task_pid(&self, id: &str) -> i32 {
        self.task(id).unwrap_or_else(|| panic!("no task {id} in ctr tasks ls")).0
    }

    #[track_caller]
    pub fn task_status(&self, id: &str) -> String {
        self.task(id).map(|t| t.1).unwrap_or_else(|| "(none)".into())
    }

    /// Kills and removes every task and container of the namespace.
    pub fn remove_all(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let t = Duration::from_secs(30);
        let ids: Vec<String> =
            self.cli.try_run(&["containers", "ls", "-q"], t).map(|o| o.stdout.split_whitespace().map(String::from).collect()).unwrap_or_default();
        for id in &ids {
            if self.task(id).is_some() {
                let _ = self.cli.try_run(&["tasks", "kill", "-a", "-s", "SIGKILL", id], t);
                match self.cli.try_run(&["tasks", "rm", "-f", id], t) {
                    Ok(o) if o.success() || o.stderr.contains("not found") => {}
                    Ok(o) => problems.push(format!("ctr tasks rm -f {id}:\n{}", o.describe())),
                    Err(e) => problems.push(e),
                }
            }
            match self.cli.try_run(&["containers", "rm", id], t) {
                Ok(o) if o.success() => {}
                Ok(o) => problems.push(format!("ctr containers rm {id}:\n{}", o.describe())),
                Err(e) => problems.push(e),
            }
        }
        problems
    }

    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        super::suite::Engine::after_scenario(self);
        if let Some(mut d) = self.daemon.take() {
            d.stop(Duration::from_secs(20));
        }
        // The runtime's state of containers the shim could not delete.
        if let Ok(rd) = std::fs::read_dir(self.state_root()) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    problems.push(format!("{} still had state for {id}: force-deleting it", self.state_root().display()));
                    let _ =
                        crate::procs::output(std::process::Command::new(&self.rt.bin).arg("--root").arg(self.state_root()).args(["delete", "--force", &id]));
                }
            }
        }
        // containerd makes /run/containerd/runc/<namespace> whatever --runc-root says; the
        // namespace is ours.
        let _ = std::fs::remove_dir(PathBuf::from("/run/containerd/runc").join(&self.namespace));
        problems.extend(self.cgroups.teardown());
        if let Err(e) = super::daemon::remove_dir(&self.dir) {
            problems.push(e);
        }
        problems
    }
}

/// Starts a containerd of our own: root, state, sockets and opt dir under `dir`, no CRI
/// plugin; returns once it answers on `sock`.
pub fn start_daemon(dir: &std::path::Path, netns: &NetNs, sock: &std::path::Path, what: &str) -> Result<Daemon, String> {
    let conf = write_config(dir, sock, what)?;
    let mut cmd = std::process::Command::new(CONTAINERD);
    cmd.arg("--config").arg(&conf);
    let mut daemon = Daemon::start("containerd", cmd, netns.raw(), &dir.join("containerd.log"))?;
    let mut probe = Cli::new(CTR, &dir.join("cli-probe"));
    probe.base_args = vec!["--address".into(), sock.to_string_lossy().into_owned()];
    probe.netns = Some(netns.raw());
    daemon
        .wait_ready(Duration::from_secs(60), || sock.exists() && probe.try_run(&["version"], Duration::from_secs(10)).map(|o| o.success()).unwrap_or(false))?;
    Ok(daemon)
}

/// Writes `dir/containerd.toml` for [`start_daemon`] (also used by the bench, which
/// starts its daemons itself): everything under `dir`, gRPC on `sock`. Returns its path.
pub fn write_config(dir: &std::path::Path, sock: &std::path::Path, what: &str) -> Result<PathBuf, String> {
    let conf = dir.join("containerd.toml");
    std::fs::write(
        &conf,
        format!(
            r#"# berth engine e2e: {what}
version = 2
root = "{d}/containerd-root"
state = "{d}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd-opt"
"#,
            d = dir.display(),
            sock = sock.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(conf)
}

impl super::suite::Engine for Containerd {
    fn wrapper(&self) -> &Wrapper {
        &self.wrapper
    }
    fn after_scenario(&self) {
        let problems = self.remove_all();
        if problems.is_empty() {
            return;
        }
        for p in &problems {
            eprintln!("berth-e2e: containerd/{}: cleanup after scenario: {p}", self.rt.name);
        }
        // A container wedged in a runtime call: kill its processes, then try again.
        let n = self.cgroups.kill_all();
        eprintln!("berth-e2e: containerd/{}: killed {n} process(es) left in our cgroups", self.rt.name);
        for p in self.remove_all() {
            eprintln!("berth-e2e: containerd/{}: cleanup after scenario (2nd try): {p}", self.rt.name);
        }
    }
    fn daemon_logs(&self) -> Vec<(&'static str, PathBuf)> {
        self.daemon.as_ref().map(|d| vec![("containerd", d.log.clone())]).unwrap_or_default()
    }
    fn work_dir(&self) -> PathBuf {
        self.dir.clone()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let problems = self.teardown();
        super::suite::teardown_problems("containerd", self.rt.name, problems);
    }
}
