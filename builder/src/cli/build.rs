//! `berth-build build`.

use crate::error::Context as _;
use std::path::{Path, PathBuf};

use super::args::{parse, switch, val, Flag};
use super::remote::{normalize_bool_flags, remote_options, REMOTE_FLAGS};
use super::Fail;
use crate::build::extras::{self, ExtraOptions, QuietLog};
use crate::build::{self, BuildOptions, Output};
use crate::layer::Compression;
use crate::progress::Mode;
use crate::registry::Reference;

const FLAGS: &[Flag] = &[
    val("file", Some('f')),
    val("tag", Some('t')),
    val("build-arg", None),
    val("target", None),
    switch("no-cache", None),
    val("output", Some('o')),
    val("progress", None),
    val("network", None),
    val("compression", None),
    val("secret", None),
    val("runtime", None),
    val("iidfile", None),
    switch("quiet", Some('q')),
    val("store", None),
    switch("push", None),
    val("cache-to", None),
    val("cache-from", None),
    val("label", None),
    val("annotation", None),
    val("add-host", None),
    val("shm-size", None),
    val("ulimit", None),
    val("cgroup-parent", None),
    switch("rm", None),
    switch("force-rm", None),
    switch("pull", None),
    val("metadata-file", None),
    val("provenance", None),
    val("sbom", None),
    val("ignorefile", None),
    val("ssh", None),
    val("build-context", None),
];

/// `build --help`: every flag, one line each (a unit test holds it to FLAGS).
pub const HELP: &str = "Usage: berth-build [--store DIR] build [OPTIONS] CONTEXT

Build an image from a Dockerfile.

Options:
  -f, --file FILE              the Dockerfile (default CONTEXT/Dockerfile; - is stdin)
  -t, --tag NAME:TAG           name the image (repeatable)
      --build-arg K[=V]        set a build arg (K alone: from the environment); SOURCE_DATE_EPOCH=N dates the image
      --target STAGE           build up to this stage
      --no-cache               run every step, the cache is not read
  -o, --output SPEC            type=oci|docker|tar|local|bundle|oci-archive|docker-archive,dest=PATH[,tar=false]; dest=- is stdout; type=registry,name=REF pushes
      --progress MODE          auto, plain or tty
      --network MODE           RUN's network: host (default) or none
      --compression ALGO       layer compression: gzip (default) or zstd
      --secret SPEC            id=ID[,src=FILE|,env=VAR] for RUN --mount=type=secret (repeatable)
      --runtime PATH           the OCI runtime for RUN (default berth beside berth-build)
      --iidfile FILE           write the image id to FILE
  -q, --quiet                  print only the image id (the progress is shown if the build fails)
      --store DIR              the image store
      --push                   push every -t name to its registry
      --cache-to SPEC          type=registry,ref=REF or type=local,dest=DIR: export the build cache
      --cache-from SPEC        type=registry,ref=REF or type=local,src=DIR: import a build cache
      --label K=V              set a label of the image config (repeatable)
      --annotation [TYPE:]K=V  annotate the manifest (default), manifest-descriptor: or index: of OCI outputs
      --add-host HOST:IP       add a line to RUN's /etc/hosts (repeatable)
      --shm-size SIZE          RUN's /dev/shm size, such as 64m or 1g
      --ulimit NAME=SOFT[:HARD] set a resource limit of RUN (repeatable), such as nofile=1024:2048
      --cgroup-parent PATH     the cgroup RUN containers go under
      --rm                     accepted: berth-build always removes its intermediate containers
      --force-rm               accepted: berth-build always removes its intermediate containers
      --pull                   look base images up in their registry even when stored
      --metadata-file FILE     write the image digest, config digest and names as JSON (as buildx)
      --provenance false       accepted as false only: provenance attestations are not supported
      --sbom false             accepted as false only: SBOM attestations are not supported
      --ignorefile FILE        ignore patterns instead of the context's .dockerignore
      --build-context NAME=VALUE  FROM/COPY --from/RUN --mount from=NAME: docker-image://REF or a local directory
      --ssh ID[=SOCKET]        an ssh-agent socket for RUN --mount=type=ssh (default alone: $SSH_AUTH_SOCK)
      --tls-verify BOOL        verify registries' TLS certificates (default true)
      --insecure-registry HOST use plain HTTP or unverified TLS for HOST (repeatable)
      --cert-file PEM          trust this CA for registries (repeatable)
      --creds USER:PASS        registry credentials
      --authfile FILE          the registry credentials file
      --platform OS/ARCH       the build's platform: the host's (another one is refused)
";

/// `--provenance` and `--sbom`: only off. Alone, they mean true (buildx).
fn attestation(p: &super::args::Parsed, flag: &str) -> Result<(), Fail> {
    match p.one(flag).as_deref() {
        None | Some("false") | Some("0") => Ok(()),
        Some(v) => Err(Fail::usage(format!("--{flag}={v}: {flag} attestations are not supported by berth-build (pass --{flag}=false or leave it out)"))),
    }
}

/// `type=registry,name=REF[,push=true]` (also `type=image,...,push=true`): the
/// reference, or None for another output type.
fn registry_output(s: &str) -> crate::Result<Option<Reference>> {
    let fields: Vec<(&str, &str)> = s.split(',').filter_map(|f| f.split_once('=')).collect();
    let get = |k: &str| fields.iter().find(|(a, _)| *a == k).map(|x| x.1);
    let push = match get("type") {
        Some("registry") => true,
        Some("image") => get("push") == Some("true"),
        _ => return Ok(None),
    };
    if !push {
        return Err(format!("invalid --output {s:?}: type=image needs push=true (the image is always in the store)").into());
    }
    let name = get("name").ok_or_else(|| format!("invalid --output {s:?}: type=registry needs name=REF"))?;
    Reference::parse(name).map(Some).context("--output")
}

pub fn run(store: &Path, args: &[String]) -> Result<(), Fail> {
    let flags: Vec<Flag> = FLAGS.iter().chain(REMOTE_FLAGS).copied().collect();
    let args: Vec<String> =
        normalize_bool_flags(args).into_iter().map(|a| if a == "--provenance" || a == "--sbom" { format!("{a}=true") } else { a }).collect();
    let p = parse(&args, &flags).map_err(Fail::usage)?;
    attestation(&p, "provenance")?;
    attestation(&p, "sbom")?;
    let extra = extra_options(&p)?;
    let [context] = p.positionals.as_slice() else {
        return Err(Fail::usage("build needs exactly one argument: the context directory"));
    };
    let quiet = p.has("quiet");
    let progress = match p.one("progress") {
        Some(m) => Mode::parse(&m).map_err(Fail::usage)?,
        None => Mode::parse("auto").expect("auto"),
    };
    let network = match p.one("network").as_deref() {
        None | Some("host") | Some("default") => berth_spec::image::NetworkMode::Host,
        Some("none") => berth_spec::image::NetworkMode::None,
        Some(o) => return Err(Fail::usage(format!("invalid --network {o:?}: want host or none"))),
    };
    let compression = match p.one("compression") {
        Some(c) => Compression::parse(&c).map_err(Fail::usage)?,
        None => Compression::default(),
    };
    let mut outputs = Vec::new();
    let mut pushes: Vec<Reference> = Vec::new();
    for o in p.all("output") {
        match registry_output(&o).map_err(Fail::usage)? {
            Some(r) => pushes.push(r),
            None => outputs.push(Output::parse(&o).map_err(Fail::usage)?),
        }
    }
    for t in p.all("tag") {
        crate::store::normalize_name(&t).map_err(|e| Fail::usage(e.to_string()))?;
        if p.has("push") {
            pushes.push(Reference::parse(&t).map_err(|e| Fail::usage(format!("--push: {e}")))?);
        }
    }
    if p.has("push") && p.all("tag").is_empty() {
        return Err(Fail::usage("--push needs at least one -t NAME"));
    }
    let remote = remote_options(&p)?;
    // type=local: a directory (remote/local_cache.rs); else a registry.
    let parse_cache = |flag: &str| -> Result<(Vec<Reference>, Vec<PathBuf>), Fail> {
        let (mut refs, mut dirs) = (Vec::new(), Vec::new());
        for s in p.all(flag) {
            let f = format!("--{flag}");
            match crate::remote::local_cache::parse_spec(&f, &s).map_err(Fail::usage)? {
                Some(d) => dirs.push(d),
                None => refs.push(crate::remote::cache::parse_cache_spec(&f, &s).map_err(Fail::usage)?),
            }
        }
        Ok((refs, dirs))
    };
    let (cache_to, cache_to_dirs) = parse_cache("cache-to")?;
    let (cache_from, cache_from_dirs) = parse_cache("cache-from")?;
    let opts = BuildOptions {
        store: p.one("store").map(PathBuf::from).unwrap_or_else(|| store.to_path_buf()),
        context: PathBuf::from(context),
        dockerfile: p.one("file").map(PathBuf::from),
        tags: p.all("tag"),
        build_args: p.all("build-arg"),
        target: p.one("target"),
        no_cache: p.has("no-cache"),
        outputs,
        progress,
        network,
        compression,
        secrets: p.all("secret"),
        runtime: p.one("runtime").map(|r| in_path(&r)),
        shim: std::env::var_os("BERTH_SHIM").filter(|s| !s.is_empty()).map(PathBuf::from),
        iidfile: p.one("iidfile").map(PathBuf::from),
        remote: remote.clone(),
        extra,
    };
    if opts.outputs.iter().any(|o| o.to_stdout()) && quiet {
        return Err(Fail::usage("-q and an output to stdout (dest=-) both write to stdout: pick one"));
    }
    if opts.outputs.iter().filter(|o| o.to_stdout()).count() > 1 {
        return Err(Fail::usage("only one --output can go to stdout (dest=-)"));
    }

    // Before any thread exists: the build as PID 1 of a PID namespace and in a mount
    // namespace of its own, dying with this process (nothing of it outlives a kill: see
    // isolation.rs; as the namespace's init it also reaps the detached shims), then
    // signal handling for cleanup.
    crate::isolation::enter(&opts.store).map_err(Fail::err)?;
    crate::cleanup::install_signal_thread();

    if !opts.no_cache {
        for r in &cache_from {
            import_cache(&opts.store, &remote, r);
        }
        for d in &cache_from_dirs {
            import_local_cache(&opts.store, d);
        }
    }
    let r = build::build(&opts);
    crate::cleanup::run_all();
    reap_all();
    if let Some(sig) = crate::cleanup::interrupted() {
        // The signal thread is cleaning up and exits with 128+sig; so do we.
        crate::cleanup::run_all();
        std::process::exit(128 + sig);
    }
    if let (Err(_), Some(log)) = (&r, &opts.extra.quiet_log) {
        // Quiet hides the progress of a build that works, not why one failed.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), &log.contents());
    }
    let b = r.map_err(Fail::from)?;
    if !pushes.is_empty() || !cache_to.is_empty() {
        let st = crate::store::Store::open(&opts.store).map_err(|e| Fail::err(e.to_string()))?;
        for dest in &pushes {
            let client = remote.client(&[dest.registry()]).map_err(Fail::err)?;
            let res = crate::remote::push::push_image(&st, &client, b.id.as_str(), dest, remote.chunk_size, None).map_err(Fail::err)?;
            let s = client.stats();
            eprintln!(
                "pushed {} {} ({} blob(s) uploaded, {} already there, {} mounted)",
                dest.familiar(),
                res.digest,
                s.blobs_uploaded,
                s.blobs_existing,
                s.blobs_mounted
            );
        }
        for r in &cache_to {
            let client = remote.client(&[r.registry()]).map_err(Fail::err)?;
            let (d, n) = crate::remote::cache::export(&st, &client, r, &b.cache_keys).map_err(Fail::err)?;
            eprintln!("exported {n} cache record(s) to {} ({d})", r.familiar());
        }
    }
    for d in &cache_to_dirs {
        let st = crate::store::Store::open(&opts.store).map_err(|e| Fail::err(e.to_string()))?;
        let n = crate::remote::local_cache::export(&st, d, &b.cache_keys).map_err(Fail::err)?;
        eprintln!("exported {n} cache record(s) to {}", d.display());
    }
    if quiet {
        println!("{}", b.id);
    }
    Ok(())
}

/// The docker/buildx flags of [`crate::build::extras`].
fn extra_options(p: &super::args::Parsed) -> Result<ExtraOptions, Fail> {
    let mut x = ExtraOptions::default();
    for l in p.all("label") {
        extras::parse_label(&l, &mut x.labels).map_err(Fail::usage)?;
    }
    for a in p.all("annotation") {
        x.annotations.add(&a).map_err(Fail::usage)?;
    }
    for h in p.all("add-host") {
        x.run.add_host(&h).map_err(Fail::usage)?;
    }
    if let Some(s) = p.one("shm-size") {
        x.run.set_shm_size(&s).map_err(Fail::usage)?;
    }
    for u in p.all("ulimit") {
        x.run.add_ulimit(&u).map_err(Fail::usage)?;
    }
    if let Some(c) = p.one("cgroup-parent") {
        x.run.set_cgroup_parent(&c).map_err(Fail::usage)?;
    }
    // --rm and --force-rm: nothing to do, every RUN container is deleted when it ends,
    // whether the step worked or not.
    x.pull = p.has("pull");
    x.metadata_file = p.one("metadata-file").map(PathBuf::from);
    x.ignorefile = p.one("ignorefile").map(PathBuf::from);
    for c in p.all("build-context") {
        extras::parse_build_context(&c, &mut x.contexts).map_err(Fail::usage)?;
    }
    let agent = std::env::var("SSH_AUTH_SOCK").ok();
    for s in p.all("ssh") {
        extras::parse_ssh(&s, agent.as_deref(), &mut x.ssh).map_err(Fail::usage)?;
    }
    x.quiet_log = p.has("quiet").then(QuietLog::default);
    Ok(x)
}

/// `--cache-from`: a cache that cannot be read is a warning, as with docker: the build
/// runs without it.
fn import_cache(store: &Path, remote: &crate::remote::RemoteOptions, r: &Reference) {
    let res = crate::store::Store::open(store)
        .map_err(crate::Error::from)
        .and_then(|st| remote.client(&[r.registry()]).and_then(|c| crate::remote::cache::import(&st, &c, r)));
    match res {
        Ok(Some(n)) => eprintln!("imported {n} cache record(s) from {}", r.familiar()),
        Ok(None) => eprintln!("[warning] no cache at {} yet", r.familiar()),
        Err(e) => eprintln!("[warning] --cache-from {}: {e}", r.familiar()),
    }
}

/// `--cache-from type=local,src=DIR`: a warning when it cannot be read, as a registry's.
fn import_local_cache(store: &Path, dir: &Path) {
    let res = crate::store::Store::open(store).map_err(|e| e.to_string()).and_then(|st| crate::remote::local_cache::import(&st, dir));
    match res {
        Ok(Some(n)) => eprintln!("imported {n} cache record(s) from {}", dir.display()),
        Ok(None) => eprintln!("[warning] no cache in {} yet", dir.display()),
        Err(e) => eprintln!("[warning] --cache-from {}: {e}", dir.display()),
    }
}

/// A command name (`runc`) looked up in $PATH; a path is kept as given.
fn in_path(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file())).unwrap_or_else(|| PathBuf::from(name))
}

/// Reaps whatever was reparented to us and has exited (no child is running any more).
fn reap_all() {
    loop {
        let mut st = 0;
        // SAFETY: non-blocking waitpid of any child.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{registry_output, FLAGS, HELP};
    use crate::cli::remote::REMOTE_FLAGS;

    #[test]
    fn help_lists_every_flag_on_a_line_of_its_own() {
        for f in FLAGS.iter().chain(REMOTE_FLAGS) {
            let lines: Vec<&str> = HELP.lines().filter(|l| l.split_whitespace().any(|w| w.trim_end_matches(',') == format!("--{}", f.long))).collect();
            assert_eq!(lines.len(), 1, "--{} in build --help: {lines:?}", f.long);
            if let Some(c) = f.short {
                assert!(lines[0].trim_start().starts_with(&format!("-{c}, --{}", f.long)), "{}", lines[0]);
            }
        }
    }

    #[test]
    fn registry_outputs_are_told_from_file_outputs() {
        let r = registry_output("type=registry,name=127.0.0.1:5000/app:1").unwrap().unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/app:1");
        assert!(registry_output("type=image,name=reg.example/app:1,push=true").unwrap().is_some());
        assert!(registry_output("type=oci,dest=/tmp/x").unwrap().is_none());
        assert!(registry_output("/tmp/dir").unwrap().is_none());
        assert!(registry_output("type=registry").unwrap_err().to_string().contains("name=REF"));
        assert!(registry_output("type=image,name=a:1").unwrap_err().to_string().contains("push=true"));
    }
}
