//! The working-container commands (see [`crate::working`]) and `save`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{parse, switch, val};
use super::template::Template;
use super::Fail;
use crate::overlay::LinkDir;
use crate::store::Store;
use crate::working::{self, change, Container};
use berth_spec::image::NetworkMode;
use serde_json::json;

fn open(store: &Path) -> Result<Store, Fail> {
    Store::open(store).map_err(|e| Fail::err(e.to_string()))
}

/// `from [--name NAME] [REGISTRY FLAGS] IMAGE`: prints the container's name.
pub fn from(store: &Path, args: &[String]) -> Result<(), Fail> {
    let flags: Vec<_> = super::remote::REMOTE_FLAGS.iter().copied().chain([val("name", None)]).collect();
    let p = parse(&super::remote::normalize_bool_flags(args), &flags).map_err(Fail::usage)?;
    let [image] = p.positionals.as_slice() else {
        return Err(Fail::usage("from needs exactly one IMAGE"));
    };
    let remote = super::remote::remote_options(&p)?;
    let s = open(store)?;
    let name = working::from(&s, image, p.one("name").as_deref(), &remote)?;
    println!("{name}");
    Ok(())
}

/// What a command that mounts the container's overlay has set up: its work dir in the
/// store's tmp/ (the overlay's mount point, the links, the runtime state) and the mount.
struct Mounted {
    work: crate::store::TempDir,
    links: LinkDir,
    merged: PathBuf,
}

fn prepare(s: &Store, c: &Container) -> Result<(Mounted, crate::overlay::Mounted), Fail> {
    let work = s.temp_dir("wc")?;
    // Removed by the signal cleanup too (after the container and the mount).
    crate::cleanup::add_dir(work.path());
    let mut links = LinkDir::new(&work.path().join("l"))?;
    let merged = work.path().join("m");
    std::fs::create_dir(&merged)?;
    let m = c.mount(s, &mut links, &merged)?;
    Ok((Mounted { work, links, merged }, m))
}

/// Enters the build's isolation (a PID and a mount namespace of its own: the overlay
/// and the container's processes cannot outlive the command) and cleans up on signals.
fn isolate(store: &Path) -> Result<(), Fail> {
    crate::isolation::enter(store).map_err(Fail::err)?;
    crate::cleanup::install_signal_thread();
    Ok(())
}

fn finish<T>(r: Result<T, Fail>) -> Result<T, Fail> {
    crate::cleanup::run_all();
    if let Some(sig) = crate::cleanup::interrupted() {
        std::process::exit(128 + sig);
    }
    r
}

/// `run [-v SRC:DST[:ro]]... [--network host|none] NAME -- CMD...`: runs CMD in the
/// container (its own container, as a Dockerfile RUN); exits with CMD's status.
pub fn run(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("volume", Some('v')), val("network", None)]).map_err(Fail::usage)?;
    let [name, cmd @ ..] = p.positionals.as_slice() else {
        return Err(Fail::usage("run needs NAME and a command"));
    };
    if cmd.is_empty() {
        return Err(Fail::usage("run needs a command after NAME"));
    }
    let network = match p.one("network").as_deref() {
        None | Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(o) => return Err(Fail::usage(format!("--network {o:?}: want host or none"))),
    };
    let mut mounts = Vec::new();
    for v in p.all("volume") {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(Fail::usage(format!("-v {v:?}: want SRC:DST[:ro]"))),
        };
        let src = std::fs::canonicalize(src).map_err(|e| Fail::err(format!("-v {v}: {src}: {e}")))?;
        if !dst.starts_with('/') {
            return Err(Fail::usage(format!("-v {v:?}: the destination must be absolute")));
        }
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if ro {
            options.push("ro".into());
        }
        mounts.push(berth_spec::config::Mount {
            destination: dst.to_string(),
            typ: Some("bind".into()),
            source: Some(src.to_string_lossy().into_owned()),
            options,
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
        });
    }
    let s = open(store)?;
    // Refused before the namespaces are made: an unknown name is a plain error.
    drop(Container::open(&s, name)?);
    isolate(store)?;
    let r = (|| -> Result<i32, Fail> {
        let mut c = Container::open(&s, name)?;
        let (m, mount) = prepare(&s, &c)?;
        let run_dir = m.work.path().join("run");
        std::fs::create_dir(&run_dir)?;
        let state = m.work.path().join(crate::store::STATE_DIR);
        let runtime = crate::build::beside_exe("berth");
        // For whoever reclaims this work dir if the command is killed (store/temp.rs).
        std::fs::write(m.work.path().join(crate::store::RUNTIME_FILE), runtime.as_os_str().as_encoded_bytes())?;
        let tools = crate::exec::Tools {
            runtime,
            shim: std::env::var_os("BERTH_SHIM").filter(|s| !s.is_empty()).map(PathBuf::from).unwrap_or_else(|| crate::build::beside_exe("berth-shim")),
            state,
        };
        let id = crate::store::unique_name("bw")?.replace('.', "-");
        let req = crate::exec::RunRequest {
            id,
            rootfs: &m.merged,
            run_dir: &run_dir,
            socket_dir: m.links.path(),
            image: &c.record.config,
            argv: cmd.to_vec(),
            extra_env: Vec::new(),
            network,
            mounts,
            settings: &Default::default(),
        };
        let mut stubs = crate::exec::Stubs::default();
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let mut shown = [0usize; 2];
        let fin = crate::exec::run(&tools, &req, &mut stubs, &mut |stream, data| {
            let _ = if stream == 2 { err.write_all(data) } else { out.write_all(data).and_then(|_| out.flush()) };
            shown[(stream == 2) as usize] += data.len();
        });
        mount.unmount().map_err(|e| Fail::err(format!("unmount {}: {e}", m.merged.display())))?;
        stubs.remove_from(&c.upper());
        let fin = fin?;
        if fin.dropped {
            // The shim let go of us (a slow reader) before the end: the rest of each
            // stream is in its log. A script reads this output, so nothing is repeated.
            for (i, name) in ["stdout", "stderr"].into_iter().enumerate() {
                let full = crate::exec::run_log_stream(&run_dir, name);
                let rest = full.as_bytes().get(shown[i]..).unwrap_or_default();
                let _ = if i == 1 { err.write_all(rest) } else { out.write_all(rest).and_then(|_| out.flush()) };
            }
        }
        c.record.pending.push(format!("RUN {}", cmd.join(" ")));
        c.save()?;
        Ok(fin.code)
    })();
    match finish(r)? {
        0 => Ok(()),
        code => Err(Fail { code, msg: format!("the command exited with status {code}"), excerpt: None }),
    }
}

/// `copy [--chown U[:G]] NAME SRC... DST`: host files into the container, as COPY
/// writes them (a directory's contents, DST relative to the working dir).
pub fn copy(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("chown", None)]).map_err(Fail::usage)?;
    let [name, srcs @ .., dest] = p.positionals.as_slice() else {
        return Err(Fail::usage("copy needs NAME, SRC and DST"));
    };
    if srcs.is_empty() {
        return Err(Fail::usage("copy needs NAME, SRC and DST"));
    }
    let s = open(store)?;
    let mut sources = Vec::new();
    for src in srcs {
        let abs = std::fs::canonicalize(src).map_err(|e| Fail::err(format!("copy: {src}: {e}")))?;
        let parent = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let base = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
        sources.push((parent, base));
    }
    drop(Container::open(&s, name)?);
    isolate(store)?;
    let r = (|| -> Result<(), Fail> {
        let mut c = Container::open(&s, name)?;
        let (m, mount) = prepare(&s, &c)?;
        let owner = match p.one("chown") {
            Some(spec) => crate::rootfs::resolve_chown(&spec, Some(&m.merged))?,
            None => (0, 0),
        };
        let workdir = c.record.config.container_config().working_dir.filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
        // Several sources go into a directory.
        let dest = if sources.len() > 1 && !dest.ends_with('/') { format!("{dest}/") } else { dest.clone() };
        for (parent, base) in &sources {
            let ctx = crate::context::Context::open(parent, crate::context::PatternMatcher::new::<&str>(&[]).map_err(|e| Fail::err(e.to_string()))?)?;
            let resolved = ctx.resolve(std::slice::from_ref(base), &Default::default())?;
            let params = crate::copy::CopyParams { root: &m.merged, dest: &dest, workdir: &workdir, owner, chmod: None, now: crate::store::now_or_epoch() };
            crate::copy::copy(&params, &ctx, &resolved, &[])?;
        }
        mount.unmount().map_err(|e| Fail::err(format!("unmount {}: {e}", m.merged.display())))?;
        c.record.pending.push(format!("COPY {} {dest}", srcs.join(" ")));
        c.save()?;
        Ok(())
    })();
    finish(r)
}

/// `config NAME --env K=V --cmd C --entrypoint E --workdir D --user U --label K=V
/// --port P --volume V --change 'INSTRUCTION'`: the pending image config. Each change
/// is recorded in the history (an empty layer), as a Dockerfile's would be.
pub fn config(store: &Path, args: &[String]) -> Result<(), Fail> {
    const FLAGS: [&str; 9] = ["env", "cmd", "entrypoint", "workdir", "user", "label", "port", "volume", "change"];
    let flags: Vec<_> = FLAGS.iter().map(|f| val(f, None)).collect();
    let p = parse(args, &flags).map_err(Fail::usage)?;
    let [name] = p.positionals.as_slice() else {
        return Err(Fail::usage("config needs exactly one container NAME"));
    };
    let mut lines = Vec::new();
    for f in FLAGS {
        for v in p.all(f) {
            lines.push(match f {
                "env" => format!("ENV {}", change::key_value(f, &v)?),
                "label" => format!("LABEL {}", change::key_value(f, &v)?),
                "cmd" => format!("CMD {v}"),
                "entrypoint" => format!("ENTRYPOINT {v}"),
                "workdir" => format!("WORKDIR {v}"),
                "user" => format!("USER {v}"),
                "port" => format!("EXPOSE {v}"),
                "volume" => format!("VOLUME {v}"),
                _ => v,
            });
        }
    }
    if lines.is_empty() {
        return Err(Fail::usage("config needs at least one change (--env, --cmd, --entrypoint, --workdir, --user, --label, --port, --volume, --change)"));
    }
    let s = open(store)?;
    let mut c = Container::open(&s, name)?;
    // All applied to a copy first: a bad change leaves the container as it was.
    let mut cfg = c.record.config.clone();
    let mut cc = cfg.container_config();
    for l in &lines {
        let text = change::apply(&mut cc, &mut cfg.author, l)?;
        cfg.history.push(berth_spec::image::History {
            created: Some(crate::store::now_rfc3339()),
            created_by: Some(text),
            author: None,
            comment: Some("berth-build config".into()),
            empty_layer: true,
        });
    }
    cfg.config = Some(cc);
    c.record.config = cfg;
    c.save()?;
    Ok(())
}

/// `commit NAME IMAGE`: prints the new image's id.
pub fn commit(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("compression", None), switch("quiet", Some('q'))]).map_err(Fail::usage)?;
    let [name, image] = p.positionals.as_slice() else {
        return Err(Fail::usage("commit needs NAME and IMAGE"));
    };
    let compression = match p.one("compression") {
        Some(c) => crate::layer::Compression::parse(&c).map_err(Fail::usage)?,
        None => Default::default(),
    };
    crate::store::normalize_name(image).map_err(|e| Fail::usage(format!("image name {image:?}: {e}")))?;
    let s = open(store)?;
    let mut c = Container::open(&s, name)?;
    let (_, config) = c.commit(&s, image, compression)?;
    println!("{config}");
    Ok(())
}

/// `rm NAME...`.
pub fn rm(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[]).map_err(Fail::usage)?;
    if p.positionals.is_empty() {
        return Err(Fail::usage("rm needs at least one container NAME"));
    }
    let s = open(store)?;
    let mut failed = None;
    for n in &p.positionals {
        match working::remove(&s, n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("berth-build: {e}");
                failed = Some(Fail::err(format!("could not remove {n}")));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// `containers [-q] [--format F]`.
pub fn containers(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("quiet", Some('q')), val("format", None), switch("all", Some('a')), switch("no-trunc", None)]).map_err(Fail::usage)?;
    let s = open(store)?;
    let trunc = !p.has("no-trunc");
    let cut = |x: &str| if trunc { x.chars().take(12).collect() } else { x.to_string() };
    let rows: Vec<_> = working::list(&s)?
        .into_iter()
        .map(|r| {
            let image_id = r.base.as_ref().and_then(|d| s.get_manifest(d).ok()).map(|m| cut(m.config.digest.hex())).unwrap_or_default();
            json!({"ID": cut(&r.id), "Name": r.name, "ImageID": image_id, "ImageName": r.from, "Created": r.created, "Builder": true})
        })
        .collect();
    if p.has("quiet") {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let format = p.one("format").unwrap_or_else(|| "table {{.ID}}\\t{{.ImageID}}\\t{{.ImageName}}\\t{{.Name}}".into());
    let t = Template::parse(&format).map_err(|e| Fail::usage(e.detail()))?;
    let sample = json!({"ID": "", "Name": "", "ImageID": "", "ImageName": "", "Created": "", "Builder": true});
    print!("{}", t.id_header("CONTAINER ID").render_all(&sample, &rows)?);
    Ok(())
}

/// `save [--format docker-archive|oci-archive] -o FILE IMAGE`.
pub fn save(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("output", Some('o')), val("format", None)]).map_err(Fail::usage)?;
    let [image] = p.positionals.as_slice() else {
        return Err(Fail::usage("save needs exactly one IMAGE"));
    };
    let dest = p.one("output").ok_or_else(|| Fail::usage("save needs -o FILE"))?;
    let format = match p.one("format").as_deref() {
        None | Some("docker-archive") => crate::export::ExportFormat::DockerArchive,
        Some("oci-archive") => crate::export::ExportFormat::OciArchive,
        Some(f) => return Err(Fail::usage(format!("--format {f:?}: want docker-archive or oci-archive"))),
    };
    let s = open(store)?;
    let d = s.resolve(image)?;
    // By id: the archive carries the image's first name, as docker save does.
    let name = s.names_of(&d)?.into_iter().next();
    let name = crate::store::normalize_name(image).ok().filter(|n| s.resolve(n).ok() == Some(d.clone())).or(name);
    let opts = crate::export::ExportOptions { name, ..Default::default() };
    crate::export::export(&s, d.as_str(), format, Path::new(&dest), &opts).map_err(|e| Fail::err(format!("save {image} to {dest}: {e}")))?;
    Ok(())
}
