//! Property tests of the readers of untrusted input: the Dockerfile parser, the tar
//! reader (and the layer unpacker on top of it) and the image-archive reader of `load`.
//! Arbitrary input and mutations of a valid one never panic, never write outside the
//! directory they are given, and hold memory bounded by the reader's own limits and the
//! input's size (measured with the counting allocator of alloc_count.rs).

use crate::alloc_count::{peak_bytes, reset_peak};
use crate::layer::tar::{Header, Kind, TarReader, BLOCK};
use crate::layer::tests::{hdr, tar_of, Tmp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// One change to a valid input; positions are taken modulo its length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// Copies `len` bytes from one place to another (a header over content, ...).
    Duplicate(usize, usize, usize),
}

/// Bytes the readers give meaning to: tar type flags and digits, Dockerfile syntax.
const INTERESTING: &[u8] = b"\0 \n\\/.$`'\"{}[]=-:#<>0123457xLKSgDZ";

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![prop::sample::select(INTERESTING), any::<u8>()]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), byte()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), prop::collection::vec(byte(), 1..16)).prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..600).prop_map(|(p, n)| Mutation::Remove(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>(), 1usize..600).prop_map(|(a, b, n)| Mutation::Duplicate(a, b, n)),
    ]
}

fn mutate(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match m {
            Mutation::Flip(p, b) => data[p % len] ^= b,
            Mutation::Set(p, b) => data[p % len] = *b,
            Mutation::Insert(p, v) => {
                let at = p % (len + 1);
                data.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let at = p % len;
                data.drain(at..(at + n).min(len));
            }
            Mutation::Truncate(p) => data.truncate(p % len),
            Mutation::Duplicate(a, b, n) => {
                let (from, to) = (a % len, b % len);
                let n = (*n).min(len - from).min(len - to);
                let chunk = data[from..from + n].to_vec();
                data[to..to + n].copy_from_slice(&chunk);
            }
        }
    }
    data
}

/// Sets the checksum of every block at a multiple of 512 that looks like a ustar
/// header: mutated headers are then read as headers rather than refused at once.
fn fix_checksums(data: &mut [u8]) {
    for b in data.chunks_exact_mut(BLOCK) {
        if &b[257..262] != b"ustar" {
            continue;
        }
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&c| c as u32).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
}

/// Runs `f`, returning its result and the most bytes this thread held meanwhile.
fn peak<T>(f: impl FnOnce() -> T) -> (T, u64) {
    reset_peak();
    let r = f();
    (r, peak_bytes())
}

/// Every path under `dir` with its content (files), target (symlinks) or nothing; not
/// what is under `skip` (the directory written to: it may hold fifos and sparse files).
fn listing(dir: &Path, skip: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let t = e.file_type().unwrap();
            if rel == skip {
                out.insert(rel, Vec::new());
                continue;
            }
            let v = if t.is_symlink() {
                std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
            } else if t.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            if t.is_dir() {
                stack.push(p);
            }
            out.insert(rel, v);
        }
    }
    out
}

// ---- Dockerfile ----

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox VERSION="1.0"
FROM ${BASE}:${VERSION:-latest} AS build
ENV A=1 B="two words" C=${A:+set}
RUN --mount=type=cache,target=/c,id=x --network=none echo $A \
    && echo "${B}" > /out
RUN <<EOF bash
echo heredoc $A
EOF
COPY --from=build --chown=1:1 --chmod=644 a b* /dst/
ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/x /x
ONBUILD RUN ["sh", "-c", "echo ${A}"]
HEALTHCHECK --interval=5s CMD ["true"]
LABEL k="v" \
      k2=v2
FROM scratch
COPY --from=0 /out /out
CMD ["/out"]
"#;

/// Words that make up Dockerfiles, to generate text the parser goes deep into.
const DF_WORDS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ARG",
    "ENV",
    "LABEL",
    "ONBUILD",
    "CMD",
    "ENTRYPOINT",
    "HEALTHCHECK",
    "SHELL",
    "USER",
    "WORKDIR",
    "EXPOSE",
    "VOLUME",
    "STOPSIGNAL",
    "MAINTAINER",
    "AS",
    "--from=",
    "--mount=type=",
    "--chown=",
    "--network=",
    "<<EOF",
    "<<-EOF",
    "EOF",
    "\\\n",
    "`\n",
    "# escape=`\n",
    "# syntax=x\n",
    "${",
    "}",
    "$",
    ":-",
    ":+",
    "=",
    "\"",
    "'",
    "[",
    "]",
    ",",
    " ",
    "\n",
    "\t",
    "busybox",
    "scratch",
    "0",
    "a",
    "/",
    "*",
];

fn dockerfile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(DF_WORDS), 0..120).prop_map(|w| w.concat()),
        prop::collection::vec(any::<char>(), 0..300).prop_map(|c| c.into_iter().collect()),
        prop::collection::vec(mutation(), 1..8).prop_map(|m| String::from_utf8_lossy(&mutate(DOCKERFILE.as_bytes().to_vec(), &m)).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The parser takes any text: an error or a Dockerfile, never a panic, and memory
    /// in proportion to the text.
    #[test]
    fn the_dockerfile_parser_takes_any_text(text in dockerfile_text()) {
        let (_, bytes) = peak(|| crate::dockerfile::parse(&text, "Dockerfile").map(|df| df.stages.len()));
        prop_assert!(bytes <= 64 * 1024 + 64 * text.len() as u64, "{bytes} bytes held parsing {} bytes", text.len());
    }
}

// ---- tar ----

/// A tar with every kind of entry the reader handles: long names (GNU and PAX), xattrs,
/// links, devices, a symlink out of the tree and a file written through it.
fn valid_tar() -> Vec<u8> {
    let long = format!("d/{}/f", "n".repeat(150));
    let mut x = hdr(Kind::File, "x", "");
    x.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
    x.uid = 1000;
    x.mtime = 1_700_000_000;
    let mut dev = hdr(Kind::Char, "d/null", "");
    (dev.devmajor, dev.devminor) = (1, 3);
    let entries: Vec<(Header, Vec<u8>)> = vec![
        (hdr(Kind::Dir, "d", ""), vec![]),
        (hdr(Kind::File, "d/a.txt", ""), b"hello\n".to_vec()),
        (hdr(Kind::File, &long, ""), vec![7; 700]),
        (x, b"xattr".to_vec()),
        (hdr(Kind::Symlink, "d/s", "a.txt"), vec![]),
        (hdr(Kind::Symlink, "out", "../outside"), vec![]),
        (hdr(Kind::File, "out/evil", ""), b"escaped".to_vec()),
        (hdr(Kind::Hardlink, "d/h", "d/a.txt"), vec![]),
        (hdr(Kind::Fifo, "d/p", ""), vec![]),
        (dev, vec![]),
        (hdr(Kind::File, "d/.wh.gone", ""), vec![]),
    ];
    tar_of(&entries)
}

fn tar_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(mutation(), 1..6).prop_map(|m| {
            let mut t = mutate(valid_tar(), &m);
            fix_checksums(&mut t);
            t
        }),
    ]
}

/// What the reader may hold at most besides the input: one extended header
/// (tar.rs MAX_META, 8 MiB) or one sparse map, and buffers.
const TAR_MEMORY: u64 = 24 << 20;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The reader takes any bytes: entries then an error or the end, never a panic, and
    /// never more memory than one extended header's worth.
    #[test]
    fn the_tar_reader_takes_any_bytes(data in tar_input()) {
        let ((), bytes) = peak(|| {
            let mut tr = TarReader::new(&data[..]);
            // Bounded: a sparse entry may claim terabytes of holes.
            for _ in 0..10_000 {
                match tr.next_entry() {
                    Ok(Some(_)) => {
                        let _ = std::io::copy(&mut (&mut tr).take(1 << 20), &mut std::io::sink());
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        });
        prop_assert!(bytes <= TAR_MEMORY + 64 * data.len() as u64, "{bytes} bytes held reading {} bytes", data.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Unpacking any tar writes only under its destination: the directory beside it
    /// (which a symlink in the tar points to) and the rest of the test dir are untouched.
    #[test]
    fn unpacking_any_tar_writes_only_under_its_destination(data in tar_input()) {
        let t = Tmp::new("prop-unpack");
        let outside = t.mkdir("outside");
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        let dest = t.mkdir("dest");
        let before = listing(&t.dir, "dest");
        let _ = crate::layer::unpack::unpack(&data[..], &dest, &crate::layer::unpack::UnpackOptions::overlay());
        prop_assert_eq!(before, listing(&t.dir, "dest"));
    }
}

// ---- load ----

/// A docker-archive of one image (config, one layer, manifest.json).
fn valid_docker_archive() -> Vec<u8> {
    let layer = tar_of(&[(hdr(Kind::File, "hello", ""), b"hi\n".to_vec())]);
    let cfg = berth_spec::image::ImageConfig {
        architecture: berth_spec::image::host_platform().architecture,
        os: "linux".into(),
        rootfs: berth_spec::image::RootFs { typ: "layers".into(), diff_ids: vec![crate::store::hash::sha256(&layer)] },
        ..Default::default()
    };
    let manifest = serde_json::json!([{ "Config": "cfg.json", "RepoTags": ["loaded:1"], "Layers": ["l1/layer.tar"] }]);
    tar_of(&[
        (hdr(Kind::File, "manifest.json", ""), serde_json::to_vec(&manifest).unwrap()),
        (hdr(Kind::File, "cfg.json", ""), serde_json::to_vec(&cfg).unwrap()),
        (hdr(Kind::Dir, "l1", ""), vec![]),
        (hdr(Kind::File, "l1/layer.tar", ""), layer),
        (hdr(Kind::Symlink, "l2", "../.."), vec![]),
    ])
}

fn archive_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..2000),
        4 => prop::collection::vec(mutation(), 1..6).prop_map(|m| {
            let mut t = mutate(valid_docker_archive(), &m);
            fix_checksums(&mut t);
            t
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `load` of any archive: loaded or refused, never a panic; it writes only in the
    /// store, leaves nothing in the store's tmp/, and holds memory bounded by its limits.
    #[test]
    fn load_takes_any_archive(data in archive_input()) {
        let t = Tmp::new("prop-load");
        let store = crate::store::Store::open(t.p("s")).unwrap();
        let archive = t.p("a.tar");
        std::fs::write(&archive, &data).unwrap();
        let before = listing(&t.dir, "s");
        let (r, bytes) = peak(|| crate::remote::load::load(&store, &archive, None, &crate::registry::Platform::host()));
        prop_assert_eq!(before, listing(&t.dir, "s"));
        prop_assert!(std::fs::read_dir(t.p("s/tmp")).unwrap().next().is_none(), "left in tmp/ ({r:?})");
        prop_assert!(bytes <= TAR_MEMORY + (4 << 20) + 64 * data.len() as u64, "{bytes} bytes held loading {} bytes", data.len());
    }
}

/// The properties mean something: the valid inputs the mutations start from are read
/// whole, and the allocator counts what the readers hold.
#[test]
fn the_valid_inputs_are_read_whole() {
    let (df, bytes) = peak(|| crate::dockerfile::parse(DOCKERFILE, "Dockerfile").unwrap());
    assert_eq!(df.stages.len(), 2);
    assert!(bytes > 0, "no allocation counted");
    let data = valid_tar();
    let mut tr = TarReader::new(&data[..]);
    let mut n = 0;
    while tr.next_entry().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 11);
    let t = Tmp::new("prop-valid");
    let store = crate::store::Store::open(t.p("s")).unwrap();
    std::fs::write(t.p("a.tar"), valid_docker_archive()).unwrap();
    let loaded = crate::remote::load::load(&store, &t.p("a.tar"), None, &crate::registry::Platform::host()).unwrap();
    assert_eq!(loaded[0].0.as_deref(), Some("loaded:1"));
}
