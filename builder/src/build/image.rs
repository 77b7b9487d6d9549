//! The built image: config blob (creation time: see [`super::times`]), manifest, tags and
//! outputs.

use crate::error::Context as _;
use berth_spec::image::{ImageConfig, Manifest};

use super::{extras, Builder, Built, StageResult};
use crate::export::{self, ExportFormat, ExportOptions};

/// The image config of a stage result, as written.
pub fn image_config(r: &StageResult, epoch: Option<i64>) -> ImageConfig {
    let mut c = r.config.clone();
    super::times::set_image_created(epoch, &mut c);
    c.rootfs.diff_ids = r.diff_ids();
    if let Some(cc) = c.config.as_mut() {
        if cc.on_build.as_ref().is_some_and(|v| v.is_empty()) {
            cc.on_build = None;
        }
    }
    c
}

/// Stores the image, tags it, writes the outputs.
pub fn finish(b: &Builder, r: &StageResult) -> crate::Result<Built> {
    let id = b.progress.start("exporting to image");
    let res = (|| -> crate::Result<Built> {
        let extra = &b.opts.extra;
        let mut config = image_config(r, b.epoch);
        extras::apply_labels(&mut config, &extra.labels);
        let cdesc = b.store.put_config(&config)?;
        let mut manifest = Manifest::new(cdesc.clone(), r.layers.iter().map(|l| l.blob.clone()).collect());
        manifest.annotations.extend(extra.annotations.manifest.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mdesc = b.store.put_manifest(&manifest)?;
        b.progress.note(id, &format!("writing image {}", mdesc.digest));
        let mut names = Vec::new();
        for t in &b.opts.tags {
            let n = b.store.tag(t, &mdesc.digest)?;
            b.progress.note(id, &format!("naming to {n}"));
            names.push(n);
        }
        for out in &b.opts.outputs {
            let dest = &out.dest;
            b.progress
                .note(id, &format!("exporting {} to {}", format_name(out.format), if out.to_stdout() { "stdout".into() } else { dest.display().to_string() }));
            // An OCI layout names the manifest by each tag.
            let targets: Vec<Option<String>> =
                if out.format == ExportFormat::Oci && names.len() > 1 { names.iter().cloned().map(Some).collect() } else { vec![names.first().cloned()] };
            for name in targets {
                let opts = ExportOptions {
                    name: name.clone(),
                    descriptor_annotations: extra.annotations.manifest_descriptor.clone(),
                    index_annotations: extra.annotations.index.clone(),
                    ..Default::default()
                };
                let what = || format!("output {} to {}", format_name(out.format), dest.display());
                if out.to_stdout() {
                    to_stdout(b, mdesc.digest.as_str(), out.format, &opts).with_context(what)?;
                } else {
                    export::export(&b.store, mdesc.digest.as_str(), out.format, dest, &opts).with_context(what)?;
                }
            }
        }
        if let Some(p) = &b.opts.iidfile {
            std::fs::write(p, mdesc.digest.as_str()).with_context(|| format!("--iidfile {}", p.display()))?;
        }
        if let Some(p) = &extra.metadata_file {
            extras::write_metadata(p, &mdesc, &cdesc, &names)?;
        }
        Ok(Built { id: mdesc.digest, names, cache_keys: b.cache_keys.clone() })
    })();
    match &res {
        Ok(_) => b.progress.done(id, None),
        Err(e) => b.progress.error(id, e),
    }
    res
}

/// `dest=-`: the tarball written in the store's tmp/, then copied to stdout.
fn to_stdout(b: &Builder, id: &str, format: ExportFormat, opts: &ExportOptions) -> std::io::Result<()> {
    let dir = b.store.temp_dir("stdout")?;
    let file = dir.path().join("out.tar");
    export::export(&b.store, id, format, &file, opts)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut std::fs::File::open(&file)?, &mut out)?;
    std::io::Write::flush(&mut out)
}

fn format_name(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Oci => "oci",
        ExportFormat::OciArchive => "oci-archive",
        ExportFormat::DockerArchive => "docker-archive",
        ExportFormat::Local => "local",
        ExportFormat::Bundle => "bundle",
        ExportFormat::Tar => "tar",
        ExportFormat::DockerDir => "docker (directory)",
    }
}
