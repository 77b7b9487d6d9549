//! `images`, `inspect`, `history`, `tag`, `rmi`, `prune`, `import`.

use std::path::Path;

use super::args::{parse, switch, val};
use super::template::Template;
use super::Fail;
use crate::layer::{Compression, ImportOptions};
use crate::progress::human_size;
use crate::store::ImageSummary;
use crate::store::{PruneOptions, Store};
use serde_json::{json, Value};

fn open(store: &Path) -> Result<Store, Fail> {
    Store::open(store).map_err(|e| Fail::err(e.to_string()))
}

fn short(d: &berth_spec::image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// `images [-q] [--no-trunc] [--format F] [--filter K=V]...`.
pub fn images(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("quiet", Some('q')), switch("no-trunc", None), val("format", None), val("filter", Some('f'))]).map_err(Fail::usage)?;
    let s = open(store)?;
    let filters = p.all("filter").iter().map(|f| Filter::parse(f)).collect::<crate::Result<Vec<_>>>().map_err(|e| Fail::usage(e.detail()))?;
    let filters = filters.into_iter().map(|f| f.prepare(&s)).collect::<Result<Vec<_>, Fail>>()?;
    let mut list = s.images()?;
    list.retain(|i| filters.iter().all(|f| f.matches(i)));
    let trunc = !p.has("no-trunc");
    if p.has("quiet") {
        let mut seen = std::collections::HashSet::new();
        for i in &list {
            let id = image_id(i, trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|i| image_row(i, trunc)).collect();
    let format = p.one("format").unwrap_or_else(|| "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}".into());
    let t = Template::parse(&format).map_err(|e| Fail::usage(e.detail()))?;
    print!("{}", t.render_all(&image_row(&sample_summary(), trunc), &rows)?);
    Ok(())
}

fn sample_summary() -> ImageSummary {
    ImageSummary { name: String::new(), digest: berth_spec::image::Digest::sha256(b""), id: None, created: None, labels: Default::default(), size: 0 }
}

/// The IMAGE ID: 12 hex digits of the config digest, or the whole digest.
fn image_id(i: &ImageSummary, trunc: bool) -> String {
    match &i.id {
        Some(d) if trunc => short(d),
        Some(d) => d.to_string(),
        None => "<unreadable>".into(),
    }
}

/// A row of `images`, with docker's field names.
fn image_row(i: &ImageSummary, trunc: bool) -> Value {
    let (repo, tag) = i.name.rsplit_once(':').unwrap_or((&i.name, ""));
    let created = i.created.as_deref().unwrap_or("");
    json!({
        "Repository": repo,
        "Tag": tag,
        "ID": image_id(i, trunc),
        "Digest": i.digest.to_string(),
        "CreatedAt": created,
        "CreatedSince": since(created),
        "Size": human_size(i.size),
        "Labels": i.labels,
    })
}

/// `5 minutes ago`, as docker's CreatedSince; `N/A` without a time.
fn since(rfc3339: &str) -> String {
    let Some(t) = berth_spec::image::parse_rfc3339(rfc3339) else { return "N/A".into() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let d = (now - t).max(0);
    let (n, unit) = match d {
        0..=59 => return "Less than a minute ago".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        86_400..=604_799 => (d / 86_400, "day"),
        604_800..=2_629_999 => (d / 604_800, "week"),
        2_630_000..=31_535_999 => (d / 2_630_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// One `--filter` of `images` (docker's).
enum Filter {
    /// `reference=PATTERN`: `*` and `?` within a path component, against `name:tag`
    /// or the name alone.
    Reference(String),
    Label(String, Option<String>),
    Dangling(bool),
    /// `before=IMAGE` / `since=IMAGE`: created before / after that image; the time is
    /// read by [`Filter::prepare`].
    Before(String, Option<i64>),
    Since(String, Option<i64>),
}

impl Filter {
    fn parse(f: &str) -> crate::Result<Filter> {
        let (k, v) = f.split_once('=').ok_or_else(|| crate::Error::msg(format!("bad filter {f:?}: want KEY=VALUE")))?;
        Ok(match k {
            "reference" => Filter::Reference(v.to_string()),
            "label" => match v.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
                None => Filter::Label(v.to_string(), None),
            },
            "dangling" => match v {
                "true" | "1" => Filter::Dangling(true),
                "false" | "0" => Filter::Dangling(false),
                _ => return Err(format!("bad filter {f:?}: dangling is true or false").into()),
            },
            "before" => Filter::Before(v.to_string(), None),
            "since" => Filter::Since(v.to_string(), None),
            _ => return Err(format!("unknown filter {k:?}: want reference, label, dangling, before or since").into()),
        })
    }

    /// Reads the creation time of the image a before/since filter names.
    fn prepare(self, s: &Store) -> Result<Filter, Fail> {
        let time = |name: &str| -> Result<Option<i64>, Fail> {
            let img = s.inspect(name)?;
            let t = img.config.created.as_deref().and_then(berth_spec::image::parse_rfc3339);
            t.map(Some).ok_or_else(|| Fail::err(format!("image {name} has no creation time to compare with")))
        };
        Ok(match self {
            Filter::Before(n, _) => {
                let t = time(&n)?;
                Filter::Before(n, t)
            }
            Filter::Since(n, _) => {
                let t = time(&n)?;
                Filter::Since(n, t)
            }
            f => f,
        })
    }

    fn matches(&self, i: &ImageSummary) -> bool {
        let created = i.created.as_deref().and_then(berth_spec::image::parse_rfc3339);
        match self {
            Filter::Reference(p) => {
                let repo = i.name.rsplit_once(':').map_or(i.name.as_str(), |(r, _)| r);
                glob(p, &i.name) || glob(p, repo)
            }
            Filter::Label(k, v) => i.labels.get(k).is_some_and(|x| v.as_ref().is_none_or(|v| v == x)),
            // Every image listed has a name: none is dangling (untagged) in this store.
            Filter::Dangling(d) => !d,
            Filter::Before(_, t) => created.zip(*t).is_some_and(|(c, t)| c < t),
            Filter::Since(_, t) => created.zip(*t).is_some_and(|(c, t)| c > t),
        }
    }
}
fn one_name(args: &[String], what: &str) -> Result<(crate::cli::args::Parsed, String), Fail> {
    let p = parse(args, &[switch("no-trunc", None), val("format", Some('f')), switch("quiet", Some('q'))]).map_err(Fail::usage)?;
    match p.positionals.as_slice() {
        [n] => {
            let n = n.clone();
            Ok((p, n))
        }
        _ => Err(Fail::usage(format!("{what} needs exactly one image name"))),
    }
}

/// `inspect [--format F] IMAGE`. Without `--format`: the store's view (`Id` = the config
/// digest, `Digest` = the manifest's, `Manifest`, `Config` = the image config). With it,
/// docker's fields: `Id`, `RepoTags`, `RepoDigests`, `Created`, `Author`, `Architecture`,
/// `Os`, `Variant`, `Config` (Env, Cmd, ...), `RootFS.Layers`, `Size`, `History`.
pub fn inspect(store: &Path, args: &[String]) -> Result<(), Fail> {
    let (p, name) = one_name(args, "inspect")?;
    let s = open(store)?;
    let img = s.inspect(&name)?;
    let Some(format) = p.one("format") else {
        let v = json!({
            "Id": img.manifest.config.digest,
            "Digest": img.digest,
            "Name": img.name,
            "Manifest": img.manifest,
            "Config": img.config,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    };
    let names = s.names_of(&img.digest)?;
    let repo_digests: std::collections::BTreeSet<String> =
        names.iter().filter_map(|n| n.rsplit_once(':').map(|(r, _)| format!("{r}@{}", img.digest))).collect();
    let size = img.manifest.config.size + img.manifest.layers.iter().map(|l| l.size).sum::<u64>();
    let cc = img.config.container_config();
    let row = json!({
        "Id": img.manifest.config.digest,
        "Digest": img.digest,
        "RepoTags": names,
        "RepoDigests": repo_digests,
        "Created": img.config.created.clone().unwrap_or_default(),
        "Author": img.config.author.clone().unwrap_or_default(),
        "Architecture": img.config.architecture,
        "Os": img.config.os,
        "Variant": img.config.variant.clone().unwrap_or_default(),
        "Labels": cc.labels,
        "Config": with_every_field(&cc),
        "RootFS": {"Type": "layers", "Layers": img.config.rootfs.diff_ids},
        "Size": size,
        "History": img.config.history,
    });
    let t = Template::parse(&format).map_err(|e| Fail::usage(e.detail()))?;
    if t.is_json_rows() {
        println!("{}", serde_json::to_string_pretty(&row).unwrap_or_default());
        return Ok(());
    }
    print!("{}", t.render_all(&row, std::slice::from_ref(&row))?);
    Ok(())
}

/// The container config with the fields it leaves out (unset, empty) present and empty,
/// as docker shows them: `{{.Config.Env}}` of an image without Env is `[]`, not an error.
fn with_every_field(cc: &berth_spec::image::ContainerConfig) -> Value {
    let mut v = json!({"User": "", "ExposedPorts": {}, "Env": [], "Entrypoint": null, "Cmd": null, "Volumes": {}, "WorkingDir": "",
           "Labels": {}, "StopSignal": "", "Healthcheck": null, "Shell": null, "OnBuild": null});
    if let (Some(all), Ok(Value::Object(set))) = (v.as_object_mut(), serde_json::to_value(cc)) {
        all.extend(set);
    }
    v
}

/// `history [--no-trunc] [-q] [--format F] IMAGE`: newest first, as docker.
pub fn history(store: &Path, args: &[String]) -> Result<(), Fail> {
    let (p, name) = one_name(args, "history")?;
    let img = open(store)?.inspect(&name)?;
    let trunc = !p.has("no-trunc");
    let mut layers = img.manifest.layers.iter();
    let mut rows = Vec::new();
    let n = img.config.history.len();
    for (i, h) in img.config.history.iter().enumerate() {
        let size = if h.empty_layer { 0 } else { layers.next().map(|l| l.size).unwrap_or(0) };
        let mut by = h.created_by.clone().unwrap_or_default().replace('\n', " ");
        if trunc && by.chars().count() > 60 {
            by = by.chars().take(57).collect::<String>() + "...";
        }
        // As docker: the top entry is the image; the ones below have no image of their own.
        let id = match (i + 1 == n, trunc) {
            (true, true) => short(&img.manifest.config.digest),
            (true, false) => img.manifest.config.digest.to_string(),
            _ => "<missing>".to_string(),
        };
        let created = h.created.clone().unwrap_or_default();
        rows.push(json!({
            "ID": id,
            "CreatedAt": created,
            "CreatedSince": since(&created),
            "CreatedBy": by,
            "Size": human_size(size),
            "Comment": h.comment.clone().unwrap_or_default(),
        }));
    }
    rows.reverse();
    if p.has("quiet") {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let format = p.one("format").unwrap_or_else(|| "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}".into());
    let t = Template::parse(&format).map_err(|e| Fail::usage(e.detail()))?;
    let sample = json!({"ID": "", "CreatedAt": "", "CreatedSince": "", "CreatedBy": "", "Size": "", "Comment": ""});
    print!("{}", t.render_all(&sample, &rows)?);
    Ok(())
}

/// `path.Match`-style glob: `*` and `?` do not cross `/`.
fn glob(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).take_while(|&i| i == 0 || n[i - 1] != '/').any(|i| m(&p[1..], &n[i..])),
            Some('?') => n.first().is_some_and(|&c| c != '/') && m(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && m(&p[1..], &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    m(&p, &n)
}

pub fn tag(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[]).map_err(Fail::usage)?;
    let [src, dst] = p.positionals.as_slice() else {
        return Err(Fail::usage("tag needs SOURCE and TARGET"));
    };
    let s = open(store)?;
    let d = s.resolve(src)?;
    let n = s.tag(dst, &d)?;
    println!("{n}");
    Ok(())
}

/// `rmi [-f] NAME-OR-ID...`: see [`Store::rmi_any`].
pub fn rmi(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("force", Some('f'))]).map_err(Fail::usage)?;
    if p.positionals.is_empty() {
        return Err(Fail::usage("rmi needs at least one image name"));
    }
    let s = open(store)?;
    let mut failed = None;
    for n in &p.positionals {
        let removed = s.rmi_any(n, p.has("force")).and_then(|(names, d)| Ok((names, s.get_manifest(&d)?.config.digest)));
        match removed {
            Ok((names, id)) => {
                for name in names {
                    println!("Untagged: {name}");
                }
                println!("Deleted: {id}");
            }
            Err(e) => {
                eprintln!("berth-build: {e}");
                failed = Some(Fail::err(format!("could not remove {n}")));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

pub fn prune(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("cache", None), switch("all", Some('a')), switch("force", Some('f'))]).map_err(Fail::usage)?;
    let s = open(store)?;
    let cache = p.has("cache") || p.has("all");
    let mut r = s.prune(&PruneOptions { cache })?;
    if cache {
        let mounts = s.root().join("cache-mounts");
        let size = crate::store::disk_usage(&mounts);
        if std::fs::remove_dir_all(&mounts).is_ok() {
            r.bytes += size;
        }
    }
    println!(
        "Removed {} blobs, {} layers, {} cache entries, {} temp files, {} containers of interrupted builds: {} reclaimed",
        r.blobs,
        r.layers,
        r.cache_entries,
        r.temp,
        r.containers,
        human_size(r.bytes)
    );
    Ok(())
}

pub fn import(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("compression", None), val("message", Some('m')), val("change", Some('c'))]).map_err(Fail::usage)?;
    let [tarball, name] = p.positionals.as_slice() else {
        return Err(Fail::usage("import needs TARBALL and NAME"));
    };
    let mut opts = ImportOptions::from_env();
    if let Some(c) = p.one("compression") {
        opts.compression = Compression::parse(&c).map_err(Fail::usage)?;
    }
    opts.message = p.one("message");
    // docker import's --change: Dockerfile config instructions, checked before anything is stored.
    let changes = p.all("change");
    if !changes.is_empty() {
        let mut cc = berth_spec::image::ContainerConfig::default();
        let mut author = None;
        for c in &changes {
            crate::working::change::apply(&mut cc, &mut author, c).map_err(|e| Fail::usage(e.to_string()))?;
        }
        opts.config = Some(cc);
    }
    let s = open(store)?;
    let imported = if tarball == "-" {
        crate::layer::import_reader(&s, std::io::stdin(), name, &opts, "stdin", "berth-build import -")?
    } else {
        crate::layer::import_tarball(&s, Path::new(tarball), name, &opts)?
    };
    println!("{} {}", imported.name, imported.manifest.digest);
    Ok(())
}
