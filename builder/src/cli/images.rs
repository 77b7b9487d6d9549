//! `images`, `inspect`, `history`, `tag`, `rmi`, `prune`, `import`.

use std::path::Path;

use super::args::{parse, switch, val};
use super::Fail;
use crate::layer::{Compression, ImportOptions};
use crate::progress::human_size;
use crate::store::{PruneOptions, Store};

fn open(store: &Path) -> Result<Store, Fail> {
    Store::open(store).map_err(|e| Fail::err(e.to_string()))
}

fn short(d: &berth_spec::image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

pub fn images(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("quiet", Some('q')), val("format", None)]).map_err(Fail::usage)?;
    let list = open(store)?.images()?;
    if p.has("quiet") {
        for i in &list {
            println!("{}", short(&i.digest));
        }
        return Ok(());
    }
    if p.one("format").as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        return Ok(());
    }
    println!("{:<40} {:<16} {:<14} {:<22} SIZE", "REPOSITORY", "TAG", "IMAGE ID", "CREATED");
    for i in &list {
        let (repo, tag) = i.name.rsplit_once(':').unwrap_or((&i.name, ""));
        println!("{:<40} {:<16} {:<14} {:<22} {}", repo, tag, short(&i.digest), i.created.as_deref().unwrap_or("-"), human_size(i.size));
    }
    Ok(())
}

fn one_name(args: &[String], what: &str) -> Result<(crate::cli::args::Parsed, String), Fail> {
    let p = parse(args, &[switch("no-trunc", None), val("format", None)]).map_err(Fail::usage)?;
    match p.positionals.as_slice() {
        [n] => {
            let n = n.clone();
            Ok((p, n))
        }
        _ => Err(Fail::usage(format!("{what} needs exactly one image name"))),
    }
}

pub fn inspect(store: &Path, args: &[String]) -> Result<(), Fail> {
    let (_, name) = one_name(args, "inspect")?;
    let img = open(store)?.inspect(&name)?;
    let v = serde_json::json!({
        "Id": img.digest,
        "Name": img.name,
        "Manifest": img.manifest,
        "Config": img.config,
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}

pub fn history(store: &Path, args: &[String]) -> Result<(), Fail> {
    let (p, name) = one_name(args, "history")?;
    let img = open(store)?.inspect(&name)?;
    let trunc = !p.has("no-trunc");
    let mut layers = img.manifest.layers.iter();
    let mut rows = Vec::new();
    for h in &img.config.history {
        let size = if h.empty_layer { 0 } else { layers.next().map(|l| l.size).unwrap_or(0) };
        let mut by = h.created_by.clone().unwrap_or_default().replace('\n', " ");
        if trunc && by.chars().count() > 60 {
            by = by.chars().take(57).collect::<String>() + "...";
        }
        rows.push((h.created.clone().unwrap_or_default(), by, size, h.comment.clone().unwrap_or_default()));
    }
    println!("{:<22} {:<60} {:<10} COMMENT", "CREATED", "CREATED BY", "SIZE");
    for (created, by, size, comment) in rows.iter().rev() {
        println!("{:<22} {:<60} {:<10} {}", created, by, human_size(*size), comment);
    }
    Ok(())
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

pub fn rmi(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[switch("force", Some('f'))]).map_err(Fail::usage)?;
    if p.positionals.is_empty() {
        return Err(Fail::usage("rmi needs at least one image name"));
    }
    let s = open(store)?;
    let mut failed = None;
    for n in &p.positionals {
        match s.rmi(n) {
            Ok(d) => println!("Untagged: {n} ({})", short(&d)),
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
    let p = parse(args, &[val("compression", None), val("message", Some('m'))]).map_err(Fail::usage)?;
    let [tarball, name] = p.positionals.as_slice() else {
        return Err(Fail::usage("import needs TARBALL and NAME"));
    };
    let mut opts = ImportOptions::from_env();
    if let Some(c) = p.one("compression") {
        opts.compression = Compression::parse(&c).map_err(Fail::usage)?;
    }
    opts.message = p.one("message");
    let s = open(store)?;
    let imported = if tarball == "-" {
        crate::layer::import_reader(&s, std::io::stdin(), name, &opts, "stdin", "berth-build import -")?
    } else {
        crate::layer::import_tarball(&s, Path::new(tarball), name, &opts)?
    };
    println!("{} {}", imported.name, imported.manifest.digest);
    Ok(())
}
