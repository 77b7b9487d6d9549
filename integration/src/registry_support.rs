//! A real registry for the end-to-end tests of berth-build's registry commands
//! (tests/registry_build.rs): Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 with a free port and its own temp dir (config, storage, certificates,
//! log), plain or with htpasswd auth and TLS from a test CA. It is started with
//! [`crate::procs::spawn`] (the test binary is a child subreaper and reaps what it does
//! not track), killed by pid and waited for on drop, even when the test fails. Its
//! access log counts the requests the registry really got (blob upload POSTs).
//!
//! Also a podman with all its state in a dir of the test (vfs storage, runc, the
//! rlimits this machine allows), to run what was pushed.

use crate::{host, procs};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test unless `tool` is in $PATH (.ci/run installs them all).
pub fn need(tool: &str) {
    let found = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(found, "{tool} is not installed: apt-get install docker-registry skopeo apache2-utils openssl podman runc");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("addr").port()
}

#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// htpasswd user and password.
    pub htpasswd: Option<(String, String)>,
    /// TLS with a server certificate for 127.0.0.1 signed by a test CA ([`Registry::ca`]).
    pub tls: bool,
    /// Bearer-token auth by an issuer the test runs.
    pub token: Option<TokenAuth>,
}

/// distribution's `auth.token` settings.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// Where clients get tokens (the test's token server).
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// The certificate whose key signs the tokens.
    pub root_cert_bundle: PathBuf,
}

pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub dir: PathBuf,
    /// The CA that signed the server certificate (with `tls`).
    pub ca: Option<PathBuf>,
}

impl Registry {
    /// Starts a registry with its files in `dir` (created) and waits until it listens.
    pub fn start(dir: &Path, cfg: &RegistryConfig) -> Registry {
        need("docker-registry");
        std::fs::create_dir_all(dir).expect("registry dir");
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
            dir.join("data").display()
        );
        let mut ca = None;
        if cfg.tls {
            let (ca_crt, crt, key) = make_certs(dir);
            yaml.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", crt.display(), key.display()));
            ca = Some(ca_crt);
        }
        if let Some((user, pass)) = &cfg.htpasswd {
            std::fs::write(dir.join("htpasswd"), bcrypt_line(user, pass)).expect("write htpasswd");
            yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", dir.join("htpasswd").display()));
        }
        if let Some(t) = &cfg.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.root_cert_bundle.display()
            ));
        }
        std::fs::write(dir.join("config.yml"), &yaml).expect("write config.yml");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry.log");
        let child = procs::spawn(
            Command::new("docker-registry").arg("serve").arg(dir.join("config.yml")).stdin(Stdio::null()).stdout(log.try_clone().expect("dup log")).stderr(log),
        )
        .expect("start docker-registry");
        let mut r = Registry { child: Some(child), port, host: format!("127.0.0.1:{port}"), dir: dir.to_path_buf(), ca };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.as_mut().expect("running").try_wait().expect("try_wait") {
                panic!("docker-registry exited ({st}): {}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {}: {}", self.host, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Requests in the access log whose request line starts with `method` and
    /// contains `path_part` (`("POST", "/blobs/uploads/")`: upload sessions started).
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        let start = format!("\"{method} /v2/");
        self.log().lines().filter(|l| l.contains(&start) && l.contains(path_part)).count()
    }

    /// Kills the registry by its pid and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            procs::signal(c.id() as i32, libc::SIGKILL);
            let _ = c.wait();
            procs::untrack(c.id());
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion; panics with its stderr unless it succeeds; its stdout.
#[track_caller]
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let desc = format!("{cmd:?}");
    let out = procs::output(cmd).unwrap_or_else(|e| panic!("{desc}: {e}"));
    assert!(out.status.success(), "{desc}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A CA, and a server certificate for IP 127.0.0.1 signed by it.
fn make_certs(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    need("openssl");
    let p = |n: &str| d.join(n).to_string_lossy().into_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(Command::new("openssl").args(["req", "-x509"]).args(ec).args(["-keyout", &p("ca.key"), "-out", &p("ca.crt"), "-days", "2"]).args([
        "-subj",
        "/CN=berth test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
    run(Command::new("openssl").arg("req").args(ec).args(["-keyout", &p("server.key"), "-out", &p("server.csr"), "-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext.cnf");
    run(Command::new("openssl").args(["x509", "-req", "-days", "2", "-CAcreateserial"]).args([
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-out",
        &p("server.crt"),
        "-extfile",
        &p("ext.cnf"),
    ]));
    (d.join("ca.crt"), d.join("server.crt"), d.join("server.key"))
}

/// `user:bcrypt-hash` for htpasswd auth (apache2-utils' htpasswd).
fn bcrypt_line(user: &str, pass: &str) -> String {
    need("htpasswd");
    String::from_utf8(run(Command::new("htpasswd").args(["-Bbn", user, pass]))).expect("utf-8")
}

/// podman with all its state under `dir`; on drop its containers and images are
/// removed and what it left mounted under `dir` is unmounted.
pub struct Podman {
    pub dir: PathBuf,
}

/// runc: crun refuses this machine's hybrid cgroups.
pub const RUNC: &str = "/usr/sbin/runc";

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        need("podman");
        std::fs::create_dir_all(dir.join("tmp")).expect("podman dir");
        std::fs::write(dir.join("auth.json"), "{\"auths\": {}}").expect("podman auth file");
        Podman { dir: dir.to_path_buf() }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--log-level", "error"])
            .env("TMPDIR", self.dir.join("tmp"))
            // No registries.conf search or auth file of the machine's.
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"));
        c
    }

    /// `podman run --rm` of `image` (pulled with `pull_flags`), runc, no network, the
    /// rlimits root may set here (podman's defaults are above them); stdout.
    #[track_caller]
    pub fn run(&self, pull_flags: &[&str], image: &str, cmd: &[&str]) -> String {
        run_podman(self.cmd().arg("pull").arg("--quiet").args(pull_flags).arg(image));
        self.run_local(image, cmd)
    }

    /// `podman run --rm` of an image already in this podman's storage (as [`Podman::run`]).
    #[track_caller]
    pub fn run_local(&self, image: &str, cmd: &[&str]) -> String {
        let out = run_podman(
            self.cmd()
                .args(["run", "--rm", "--runtime", RUNC, "--network", "none"])
                .args(["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"])
                .arg(image)
                .args(cmd),
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[track_caller]
fn run_podman(cmd: &mut Command) -> Vec<u8> {
    run(cmd)
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = procs::output(self.cmd().args(["rm", "--all", "--force", "--time", "0"]));
        let _ = procs::output(self.cmd().args(["rmi", "--all", "--force"]));
        let mut mounts = host::mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = host::umount(Path::new(&m));
        }
    }
}
