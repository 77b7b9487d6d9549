//! `-o type=tar` (the image's flattened rootfs as one tar) and `-o type=docker,tar=false`
//! (the docker-archive's files in a directory), as buildx writes them.

use super::{export_docker_archive, export_local, temp_beside, ExportOptions};
use crate::layer::tar::{TarWriter, WriteSink};
use crate::layer::{unpack, DiffOptions, UnpackOptions};
use crate::store::{ctx, Image, Store};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The rootfs of `image` (layers applied in order) as a tar file at `dest`. Entries keep
/// the layers' mtimes (clamped already when the build had SOURCE_DATE_EPOCH).
pub fn export_rootfs_tar(store: &Store, image: &Image, dest: &Path) -> io::Result<()> {
    let work = store.temp_dir("rootfs-tar")?;
    let root = work.path().join("rootfs");
    export_local(store, image, &root)?;
    let tmp = temp_beside(dest);
    let r = (|| -> io::Result<()> {
        let f = fs::File::create(&tmp).map_err(ctx(tmp.display()))?;
        let mut tw = TarWriter::new(WriteSink(BufWriter::with_capacity(1 << 20, f)), 1 << 20);
        let opts = DiffOptions { source_date_epoch: None, xattrs: true, ..Default::default() };
        crate::layer::diff::write_diff(&root, &mut tw, &opts)?;
        let (WriteSink(mut w), _) = tw.finish()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dest).map_err(ctx(format!("rename to {}", dest.display())))
}

/// The docker-archive of `image` unpacked into the directory `dest` (created; must be
/// empty).
pub fn export_docker_dir(store: &Store, image: &Image, dest: &Path, opts: &ExportOptions) -> io::Result<()> {
    fs::create_dir_all(dest).map_err(ctx(format!("create {}", dest.display())))?;
    if fs::read_dir(dest)?.next().is_some() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not empty", dest.display())));
    }
    let work = store.temp_dir("docker-dir")?;
    let archive = work.path().join("docker.tar");
    export_docker_archive(store, image, &archive, opts)?;
    unpack(fs::File::open(&archive).map_err(ctx(archive.display()))?, dest, &UnpackOptions::flatten()).map(drop)
}
