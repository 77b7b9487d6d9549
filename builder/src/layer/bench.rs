//! The diff() benchmark: 20,000 files, 200 MB (a third incompressible, the rest text-like),
//! against `tar czf` of the same tree. Run in release:
//!
//!     cargo test --release -p berth-build --features bench-layer --lib layer::bench -- --nocapture
//!
//! `BERTH_BENCH_DIR` picks where the tree is made (default: the temp dir).

use super::{diff, Compression, DiffOptions};
use crate::store::Store;
use std::fs;
use std::path::Path;
use std::time::Instant;

const FILES: usize = 20_000;
const TOTAL: usize = 200 << 20;

/// xorshift: deterministic content without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "the",
    "layer",
    "container",
    "image",
    "overlay",
    "struct",
    "fn",
    "return",
    "value",
    "config",
    "let",
    "mut",
    "if",
    "else",
    "match",
    "error",
    "result",
    "path",
    "file",
    "self",
    "impl",
    "for",
    "in",
    "while",
    "0x1f",
    "=>",
    "{",
    "}",
    "(",
    ");",
    "\n",
    "    ",
    "// comment",
    "#include",
    "int",
    "char",
    "static",
    "const",
    "unsigned",
    "buffer",
];

pub(crate) fn make_tree(root: &Path) -> (usize, usize) {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let avg = TOTAL / FILES;
    let mut total = 0;
    let mut buf = Vec::with_capacity(avg * 8);
    for i in 0..FILES {
        let dir = root.join(format!("d{:02}/s{:02}", i % 40, (i / 40) % 5));
        if i < 200 {
            fs::create_dir_all(&dir).unwrap();
        }
        // Sizes from 1 KB to ~4x the average, summing to about TOTAL.
        let size = 512 + (rng.next() as usize % (2 * avg - 1024));
        buf.clear();
        if i % 3 == 0 {
            while buf.len() < size {
                buf.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            while buf.len() < size {
                buf.extend_from_slice(WORDS[rng.next() as usize % WORDS.len()].as_bytes());
                buf.push(b' ');
            }
        }
        buf.truncate(size);
        fs::write(dir.join(format!("f{i}")), &buf).unwrap();
        total += size;
    }
    (FILES, total)
}

/// CPU seconds (user + system, all threads) of this process so far.
fn cpu() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

#[test]
fn bench_diff_20k_files_200mb() {
    let base = std::env::var_os("BERTH_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("berth-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let tree = dir.join("tree");
    fs::create_dir_all(&tree).unwrap();
    let (n, total) = make_tree(&tree);
    eprintln!("tree: {n} files, {:.1} MB", total as f64 / 1e6);
    let store = Store::open(dir.join("store")).unwrap();
    // Warm the page cache (as a just-finished RUN step's upper dir is).
    let _ = diff(&store, &tree, &DiffOptions { compression: Compression::None, ..Default::default() }).unwrap();
    for c in [Compression::Gzip(1), Compression::Gzip(6), Compression::Zstd(3), Compression::None] {
        let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
        let mut size = 0;
        for _ in 0..3 {
            let (t, c0) = (Instant::now(), cpu());
            let b = diff(&store, &tree, &DiffOptions { compression: c, ..Default::default() }).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu() - c0);
            size = b.descriptor.size;
        }
        eprintln!("diff {c:?}: {best:.3}s wall, {best_cpu:.3}s cpu, blob {:.1} MB, {:.0} MB/s", size as f64 / 1e6, total as f64 / 1e6 / best);
    }
    // unpack of the default (gzip) blob into an overlay lowerdir.
    let b = diff(&store, &tree, &DiffOptions::default()).unwrap();
    let dest = dir.join("unpacked");
    fs::create_dir_all(&dest).unwrap();
    let (t, c0) = (Instant::now(), cpu());
    super::unpack_blob(&store, &b.descriptor.digest, &dest, &super::UnpackOptions::overlay()).unwrap();
    eprintln!("unpack gzip blob: {:.3}s wall, {:.3}s cpu", t.elapsed().as_secs_f64(), cpu() - c0);
    for (name, cmd) in [
        ("tar czf (gzip -6)", format!("tar czf {}/b.tgz -C {} .", dir.display(), tree.display())),
        ("tar cf | gzip -1", format!("tar cf - -C {} . | gzip -1 > {}/b1.tgz", tree.display(), dir.display())),
        ("tar cf (no compression)", format!("tar cf {}/b.tar -C {} .", dir.display(), tree.display())),
        ("tar xzf of the tar czf output", format!("mkdir {0}/x && tar xzf {0}/b.tgz -C {0}/x", dir.display())),
    ] {
        let t = Instant::now();
        let out = std::process::Command::new("bash").arg("-c").arg(format!("time ({cmd})")).output().unwrap();
        assert!(out.status.success());
        let times: Vec<String> =
            String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("user") || l.starts_with("sys")).map(|l| l.replace('\t', " ")).collect();
        eprintln!("{name}: {:.3}s wall, {}", t.elapsed().as_secs_f64(), times.join(", "));
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The gzip settings on the tar of the same tree, one thread, CPU time only.
#[test]
fn bench_pgzip_settings() {
    use super::pgzip::{JobCompressor, HEADER};
    use super::tar::{TarWriter, WriteSink};
    let base = std::env::var_os("BERTH_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("berth-bench-pg-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    make_tree(&dir);
    let mut w = TarWriter::new(WriteSink(Vec::new()), 1 << 20);
    super::diff::write_diff(&dir, &mut w, &DiffOptions::default()).unwrap();
    let tar = w.finish().unwrap().0 .0;
    let _ = fs::remove_dir_all(&dir);
    eprintln!("tar: {:.1} MB", tar.len() as f64 / 1e6);
    for (sub, prime) in [
        (1usize << 30, 32 << 10),
        (64 << 10, 32 << 10),
        (32 << 10, 32 << 10),
        (32 << 10, 4 << 10),
        (16 << 10, 4 << 10),
        (16 << 10, 0),
        (8 << 10, 0),
        (8 << 10, 1 << 10),
        (4 << 10, 0),
    ] {
        let c0 = cpu();
        let mut jc = JobCompressor::new(1);
        jc.sub = sub;
        jc.prime_after_stored = prime;
        let mut out = HEADER.to_vec();
        for (k, job) in tar.chunks(1 << 20).enumerate() {
            let start = k << 20;
            let dict = &tar[start.saturating_sub(32 << 10)..start];
            jc.job(dict, job, &mut out).unwrap();
        }
        let t = cpu() - c0;
        eprintln!("sub {:>7} prime {:>6}: {:.3}s cpu, {:.0} MB/s, ratio {:.3}", sub, prime, t, tar.len() as f64 / 1e6 / t, out.len() as f64 / tar.len() as f64);
    }
}
