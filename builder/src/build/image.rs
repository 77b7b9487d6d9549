//! The built image: config blob (creation time: see [`super::times`]), manifest, tags and
//! outputs.

use berth_spec::image::{ImageConfig, Manifest};

use super::{Builder, Built, StageResult};
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
pub fn finish(b: &Builder, r: &StageResult) -> Result<Built, String> {
    let id = b.progress.start("exporting to image");
    let res = (|| -> Result<Built, String> {
        let config = image_config(r, b.epoch);
        let cdesc = b.store.put_config(&config).map_err(|e| e.to_string())?;
        let manifest = Manifest::new(cdesc, r.layers.iter().map(|l| l.blob.clone()).collect());
        let mdesc = b.store.put_manifest(&manifest).map_err(|e| e.to_string())?;
        b.progress.note(id, &format!("writing image {}", mdesc.digest));
        let mut names = Vec::new();
        for t in &b.opts.tags {
            let n = b.store.tag(t, &mdesc.digest).map_err(|e| e.to_string())?;
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
                    .map_err(|e| format!("output {} to {}: {e}", format_name(out.format), dest.display()))?;
            }
        }
        if let Some(p) = &b.opts.iidfile {
            std::fs::write(p, mdesc.digest.as_str()).map_err(|e| format!("--iidfile {}: {e}", p.display()))?;
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
