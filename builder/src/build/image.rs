//! The built image: config blob (creation time = now or SOURCE_DATE_EPOCH), manifest, tags
//! and outputs.

use crate::error::Context as _;
use berth_spec::image::{ImageConfig, Manifest};

use super::{Builder, Built, StageResult};
use crate::export::{self, ExportFormat, ExportOptions};

/// The image config of a stage result, as written.
pub fn image_config(r: &StageResult) -> ImageConfig {
    let mut c = r.config.clone();
    c.created = Some(crate::store::now_rfc3339());
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
        let config = image_config(r);
        let cdesc = b.store.put_config(&config)?;
        let manifest = Manifest::new(cdesc, r.layers.iter().map(|l| l.blob.clone()).collect());
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
            b.progress.note(id, &format!("exporting {} to {}", format_name(out.format), dest.display()));
            // An OCI layout names the manifest by each tag.
            let targets: Vec<Option<String>> =
                if out.format == ExportFormat::Oci && names.len() > 1 { names.iter().cloned().map(Some).collect() } else { vec![names.first().cloned()] };
            for name in targets {
                let opts = ExportOptions { name: name.clone(), ..Default::default() };
                export::export(&b.store, mdesc.digest.as_str(), out.format, dest, &opts)
                    .with_context(|| format!("output {} to {}", format_name(out.format), dest.display()))?;
            }
        }
        if let Some(p) = &b.opts.iidfile {
            std::fs::write(p, mdesc.digest.as_str()).with_context(|| format!("--iidfile {}", p.display()))?;
        }
        Ok(Built { id: mdesc.digest, names, cache_keys: b.cache_keys.clone() })
    })();
    match &res {
        Ok(_) => b.progress.done(id, None),
        Err(e) => b.progress.error(id, e),
    }
    res
}

fn format_name(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Oci => "oci",
        ExportFormat::OciArchive => "oci-archive",
        ExportFormat::DockerArchive => "docker-archive",
        ExportFormat::Local => "local",
        ExportFormat::Bundle => "bundle",
    }
}
