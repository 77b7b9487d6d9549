//! The test image: the harness's busybox rootfs with every busybox applet linked (httpd
//! and nc for published ports, top, ip, chown, ...), as a rootfs tarball (`podman
//! import`, `docker import`) and as an OCI image-layout archive (`ctr images import`).
//! No registry is needed.

use std::path::{Path, PathBuf};

/// The name every engine gives the image.
pub const REF: &str = "localhost/berth-e2e/busybox:latest";

pub struct Image {
    pub rootfs: PathBuf,
    /// A tar of the rootfs.
    pub tar: PathBuf,
}

fn run(cmd: &mut std::process::Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = crate::procs::output(cmd).map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Image {
    /// Builds the rootfs under `dir/image-rootfs` and its tarball `dir/image.tar`.
    pub fn build(dir: &Path) -> Result<Image, String> {
        let rootfs = dir.join("image-rootfs");
        let _ = std::fs::remove_dir_all(&rootfs);
        crate::rootfs::copy_to(&rootfs).map_err(|e| format!("copy the busybox rootfs: {e}"))?;
        let list = run(std::process::Command::new(crate::rootfs::BUSYBOX).arg("--list"))?;
        for applet in list.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox") {
            let link = rootfs.join("bin").join(applet);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink("busybox", &link).map_err(|e| format!("link {applet}: {e}"))?;
            }
        }
        std::fs::write(rootfs.join("etc/hostname"), "e2e\n").map_err(|e| e.to_string())?;
        std::fs::create_dir_all(rootfs.join("var/www")).map_err(|e| e.to_string())?;
        std::fs::write(rootfs.join("var/www/index.html"), "hello from the e2e image\n").map_err(|e| e.to_string())?;
        let tar = dir.join("image.tar");
        run(std::process::Command::new("tar").arg("-C").arg(&rootfs).arg("--numeric-owner").arg("-cf").arg(&tar).arg("."))?;
        Ok(Image { rootfs, tar })
    }

    /// An OCI image-layout archive of the image, named [`REF`], in `dir/oci.tar`.
    pub fn oci_archive(&self, dir: &Path) -> Result<PathBuf, String> {
        let layout = dir.join("oci-layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
        let put = |bytes: &[u8]| -> Result<(String, usize), String> {
            let tmp = layout.join("blob.tmp");
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            let digest = sha256(&tmp)?;
            std::fs::rename(&tmp, blobs.join(&digest)).map_err(|e| e.to_string())?;
            Ok((digest, bytes.len()))
        };
        let layer = std::fs::read(&self.tar).map_err(|e| e.to_string())?;
        let (ld, ls) = put(&layer)?;
        let config = serde_json::json!({
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{ld}")]},
        });
        let (cd, cs) = put(config.to_string().as_bytes())?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{ld}"), "size": ls}],
        });
        let (md, ms) = put(manifest.to_string().as_bytes())?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{md}"), "size": ms,
                "annotations": {"org.opencontainers.image.ref.name": REF},
            }],
        });
        std::fs::write(layout.join("index.json"), index.to_string()).map_err(|e| e.to_string())?;
        std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| e.to_string())?;
        let out = dir.join("oci.tar");
        run(std::process::Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&out).arg("oci-layout").arg("index.json").arg("blobs"))?;
        Ok(out)
    }
}

fn sha256(p: &Path) -> Result<String, String> {
    let out = run(std::process::Command::new("sha256sum").arg(p))?;
    out.split_whitespace().next().map(String::from).ok_or_else(|| format!("sha256sum printed {out:?}"))
}
