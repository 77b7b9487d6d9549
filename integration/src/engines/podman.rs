//! podman (with conmon) using the runtime under test: `podman --runtime <wrapper>`, with
//! its own root, runroot, tmpdir, network config dir, file locks and file events, a
//! containers.conf of its own (cgroupfs, rlimits this machine allows, `--log-format=json`
//! for berth as for runc), the default bridge network in the suite's network namespace,
//! and every container's cgroup under the suite's cgroup parent.
//!
//! Left outside the work dir (podman has no setting for them): the runtime's default
//! state root (/run/runc, /run/berth: podman does not pass `--root`, and a drop-in must
//! work without it), the per-container netns files in /run/netns and netavark's IPAM db
//! in /run/containers/networks (keyed by the suite's own network name). podman removes
//! its entries there when it removes a container; teardown also force-deletes from the
//! runtime's root any container it made that is still there.

use super::cli::Cli;
use super::net::NetNs;
use super::wrapper::Wrapper;
use super::{image, RuntimeUnderTest};
use crate::runtime::Output;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PODMAN: &str = "/usr/bin/podman";
pub const CONMON: &str = "/usr/bin/conmon";
/// podman's `--init` binary on Debian.
pub const CATATONIT: &str = "/usr/libexec/podman/catatonit";

pub struct Podman {
    pub rt: RuntimeUnderTest,
    pub dir: PathBuf,
    pub netns: NetNs,
    pub wrapper: Wrapper,
    /// `podman` with the suite's global flags and environment, in the netns.
    pub cli: Cli,
    pub cgroup_parent: String,
    pub image: String,
    /// The default network's name (unique: netavark's IPAM db is shared).
    pub network: String,
    seen_ids: std::sync::Mutex<Vec<String>>,
}

impl Podman {
    /// Sets podman up for `rt`, or says why it cannot run here.
    pub fn setup(rt: &RuntimeUnderTest) -> Result<Podman, String> {
        super::remove_stale();
        crate::procs::init();
        if let Some(b) = super::missing_binary(&[PODMAN, CONMON]) {
            return Err(format!("{b} is not installed (apt-get install podman conmon)"));
        }
        let dir = super::work_dir("podman", rt.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let netns = NetNs::new()?;
        let wrapper = Wrapper::new(&dir.join("wrap"), rt.name, &rt.bin);
        let network = format!("berth-e2e-{}-{}", std::process::id(), rt.name);
        let conf = dir.join("containers.conf");
        let init = if Path::new(CATATONIT).exists() { CATATONIT } else { "/usr/bin/catatonit" };
        std::fs::write(
            &conf,
            format!(
                r#"# berth engine e2e: podman with {rt}
[containers]
# Root has no CAP_SYS_RESOURCE here and a hard RLIMIT_NOFILE of 20000: podman's defaults
# (1048576) cannot be set.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
init_path = "{init}"
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "{dir}/networks"
default_network = "{network}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
lock_type = "file"
tmp_dir = "{dir}/tmp"
conmon_path = ["{CONMON}"]
# podman passes --log-format=json (and reads the runtime's --log) only to runtimes it
# knows by name.
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "berth"]
"#,
                rt = rt.name,
                dir = dir.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cli = Cli::new(PODMAN, &dir.join("cli"));
        for (k, v) in [
            ("--root", dir.join("root").to_string_lossy().into_owned()),
            ("--runroot", dir.join("runroot").to_string_lossy().into_owned()),
            ("--tmpdir", dir.join("tmp").to_string_lossy().into_owned()),
            ("--network-config-dir", dir.join("networks").to_string_lossy().into_owned()),
            ("--runtime", wrapper.path.to_string_lossy().into_owned()),
            ("--conmon", CONMON.to_string()),
            ("--cgroup-manager", "cgroupfs".to_string()),
            ("--events-backend", "file".to_string()),
            ("--storage-driver", "overlay".to_string()),
        ] {
            cli.base_args.push(k.to_string());
            cli.base_args.push(v);
        }
        cli.env.push(("CONTAINERS_CONF".into(), conf.to_string_lossy().into_owned()));
        cli.env.push(("TMPDIR".into(), dir.join("tmp").to_string_lossy().into_owned()));
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        cli.netns = Some(netns.raw());
        let p = Podman {
            rt: rt.clone(),
            cgroup_parent: super::cgroup_parent("podman", rt.name),
            dir: dir.clone(),
            netns,
            wrapper,
            cli,
            image: image::REF.to_string(),
            network,
            seen_ids: Default::default(),
        };
        let img = image::Image::build(&dir)?;
        let o = p.cli.run(&["import", &img.tar.to_string_lossy(), image::REF]);
        if !o.success() {
            return Err(format!("podman import failed:\n{}", o.describe()));
        }
        Ok(p)
    }

    /// `podman ARGS`, with `--cgroup-parent` added to `run` and `create`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&str> = Vec::new();
        if let Some((first, rest)) = args.split_first() {
            v.push(first);
            if *first == "run" || *first == "create" {
                v.push("--cgroup-parent");
                v.push(&self.cgroup_parent);
            }
            v.extend_from_slice(rest);
        }
        v
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        self.cli.run(&self.args(args))
    }

    pub fn podman_opts(&self, args: &[&str], o: &super::cli::CliOpts) -> Output {
        self.cli.run_opts(&self.args(args), o)
    }

    /// Removes every container (`rm -af -t 0`); remembers their ids first.
    pub fn remove_all(&self) -> Result<(), String> {
        if let Ok(o) = self.cli.try_run(&["ps", "-aq", "--no-trunc"], Duration::from_secs(60)) {
            let mut s = self.seen_ids.lock().unwrap_or_else(|e| e.into_inner());
            for id in o.stdout.split_whitespace() {
                if !s.iter().any(|x| x == id) {
                    s.push(id.to_string());
                }
            }
        }
        let o = self.cli.try_run(&["rm", "-af", "-t", "0"], Duration::from_secs(45))?;
        if !o.success() {
            return Err(format!("podman rm -af failed:\n{}", o.describe()));
        }
        Ok(())
    }

    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        super::suite::Engine::after_scenario(self);
        // What the runtime still holds in its default root for our containers.
        let root = PathBuf::from(format!("/run/{}", self.rt.name));
        for id in self.seen_ids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if root.join(id).exists() {
                problems.push(format!("{} still had state for {id} after podman rm: force-deleting it", root.display()));
                let _ = crate::procs::output(std::process::Command::new(&self.rt.bin).args(["delete", "--force", id]));
            }
        }
        let left = super::cgroup::remove_tree(&self.cgroup_parent);
        if !left.is_empty() {
            problems.push(format!("cgroups left: {left:?}"));
        }
        if let Err(e) = super::daemon::remove_dir(&self.dir) {
            problems.push(e);
        }
        problems
    }
}

super::compat::impl_docker_cli!(Podman, podman);

impl super::suite::Engine for Podman {
    fn wrapper(&self) -> &Wrapper {
        &self.wrapper
    }
    fn after_scenario(&self) {
        if let Err(e) = self.remove_all() {
            eprintln!("berth-e2e: podman/{}: cleanup after scenario: {e}", self.rt.name);
            // A container wedged in a runtime call: kill its processes, then try again.
            let n = super::cgroup::kill_all(&self.cgroup_parent);
            eprintln!("berth-e2e: podman/{}: killed {n} process(es) left in our cgroups", self.rt.name);
            if let Err(e) = self.remove_all() {
                eprintln!("berth-e2e: podman/{}: cleanup after scenario (2nd try): {e}", self.rt.name);
            }
        }
    }
    fn work_dir(&self) -> PathBuf {
        self.dir.clone()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let problems = self.teardown();
        if !problems.is_empty() {
            eprintln!("berth-e2e: podman/{} teardown:\n  {}", self.rt.name, problems.join("\n  "));
        }
    }
}
