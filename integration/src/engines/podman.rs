//! podman (with conmon) using the runtime under test: `podman --runtime <wrapper>`, with
//! its own root, runroot, tmpdir, network config dir, file locks and file events, a
//! containers.conf of its own (the cgroup manager of [`Driver::get`], rlimits this
//! machine allows, `--log-format=json` for berth as for runc), the default bridge network
//! in the suite's network namespace, and every container under the suite's cgroup parent
//! (`--cgroup-parent`: a cgroup path, or with systemd a slice, where podman puts each
//! container's scope `libpod-ID.scope` and conmon's `libpod-conmon-ID.scope`).
//!
//! Left outside the work dir (podman has no setting for them): the runtime's default
//! state root (/run/runc, /run/berth: podman does not pass `--root`, and a drop-in must
//! work without it), the per-container netns files in /run/netns and netavark's IPAM db
//! in /run/containers/networks (keyed by the suite's own network name). podman removes
//! its entries there when it removes a container; teardown also force-deletes from the
//! runtime's root any container it made that is still there.

use super::cgroup::{Driver, Parent};
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
    /// `--cgroup-parent`.
    pub cgroups: Parent,
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
cgroup_manager = "{manager}"
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
                manager = Driver::get().name(),
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
            ("--cgroup-manager", Driver::get().name().to_string()),
            ("--events-backend", "file".to_string()),
            ("--storage-driver", "overlay".to_string()),
        ] {
            cli.base_args.push(k.to_string());
            cli.base_args.push(v);
        }
        cli.env.push(("CONTAINERS_CONF".into(), conf.to_string_lossy().into_owned()));
        cli.env.push(("TMPDIR".into(), dir.join("tmp").to_string_lossy().into_owned()));
        // Set when the tests run as a systemd service (the VM lane): podman then leaves
        // conmon in the caller's cgroup; without it conmon gets a scope in our slice, as
        // when podman runs from a login shell.
        cli.env_remove.push("INVOCATION_ID".into());
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        cli.netns = Some(netns.raw());
        let p = Podman {
            rt: rt.clone(),
            cgroups: Parent::new("podman", rt.name),
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

    /// With cgroupfs podman moves every conmon into `PARENT/conmon` and leaves it there;
    /// with systemd each conmon gets a scope of its own that goes with it.
    fn kept_by_design(p: &Parent) -> &'static [&'static str] {
        if p.slice().is_some() {
            &[]
        } else {
            &["conmon"]
        }
    }

    /// `podman ARGS`, with `--cgroup-parent` added to `run` and `create`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&str> = Vec::new();
        if let Some((first, rest)) = args.split_first() {
            v.push(first);
            if *first == "run" || *first == "create" {
                v.push("--cgroup-parent");
                v.push(&self.cgroups.name);
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
        problems.extend(self.cgroups.teardown());
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
            let n = self.cgroups.kill_all();
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
        super::suite::teardown_problems("podman", self.rt.name, problems);
    }
}
