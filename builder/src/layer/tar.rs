//! A streaming tar writer and reader for image layers.
//!
//! Writer: USTAR headers, with a PAX extended header only where USTAR cannot hold a value
//! (long paths or link targets, ids or sizes too large, negative times, xattrs as
//! `SCHILY.xattr.NAME`), as Go's archive/tar does, so that the same input always gives
//! the same bytes: no uname/gname, no atime/ctime, fixed PAX header name, sorted records.
//! It fills large reusable chunks and hands full ones to a [`ChunkSink`] (a hashing,
//! compressing pipeline: see pipeline.rs), reading file content straight into the chunk.
//!
//! Reader: USTAR, POSIX PAX (`x`, `g` ignored), GNU long names (`L`, `K`), GNU and
//! star base-256 numbers, old V7 headers; checksums verified. Sparse files (old GNU `S`
//! entries and the PAX formats 0.0, 0.1 and 1.0 that GNU tar writes) are read as the
//! whole file, holes as zeros; their maps are checked (sorted, inside the file, covering
//! exactly the data stored) and bounded.

use std::io::{self, Read, Write};

pub const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    File,
    Hardlink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// One tar entry's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Relative path, `/`-separated, without a trailing slash (the writer adds one to
    /// directories). The reader returns it as stored (normalize with [`clean_path`]).
    pub path: Vec<u8>,
    /// Symlink target, or the path a hardlink points to.
    pub link: Vec<u8>,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content size (regular files only; 0 for everything else).
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub devmajor: u64,
    pub devminor: u64,
    /// Extended attributes (`SCHILY.xattr.NAME`), in the order they are to be written.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Where full chunks go. `consume` gets a chunk whose first `len` bytes are data and
/// returns the buffer to fill next (the same one, or a recycled one), at least as long.
pub trait ChunkSink {
    fn consume(&mut self, chunk: Vec<u8>, len: usize) -> io::Result<Vec<u8>>;
}

/// A sink that writes chunks to a `Write`.
pub struct WriteSink<W: Write>(pub W);

impl<W: Write> ChunkSink for WriteSink<W> {
    fn consume(&mut self, chunk: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
        self.0.write_all(&chunk[..len])?;
        Ok(chunk)
    }
}

pub struct TarWriter<S: ChunkSink> {
    sink: S,
    buf: Vec<u8>,
    pos: usize,
    written: u64,
    scratch: Vec<u8>,
}

const NUL_BLOCK: [u8; BLOCK] = [0; BLOCK];

impl<S: ChunkSink> TarWriter<S> {
    /// A writer filling chunks of `chunk_size` bytes (a multiple of 512 is best).
    pub fn new(sink: S, chunk_size: usize) -> TarWriter<S> {
        TarWriter { sink, buf: vec![0; chunk_size.max(BLOCK)], pos: 0, written: 0, scratch: Vec::new() }
    }

    /// Bytes of tar written so far (including what is still buffered).
    pub fn position(&self) -> u64 {
        self.written + self.pos as u64
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.pos == 0 {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let len = self.pos;
        self.buf = self.sink.consume(buf, len)?;
        self.written += len as u64;
        self.pos = 0;
        Ok(())
    }

    fn put(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (self.buf.len() - self.pos).min(data.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos += n;
            data = &data[n..];
            if self.pos == self.buf.len() {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&NUL_BLOCK[..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes an entry's header (and a PAX header before it when needed). Content of
    /// `h.size` bytes must follow through [`Self::append_data`] or [`Self::copy_data`].
    pub fn append_header(&mut self, h: &Header) -> io::Result<()> {
        let is_dir = h.kind == Kind::Dir;
        let path_len = h.path.len() + is_dir as usize;
        let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();

        // Name: in `name`, else split into prefix + name, else PAX.
        let mut full = std::mem::take(&mut self.scratch);
        full.clear();
        full.extend_from_slice(&h.path);
        if is_dir {
            full.push(b'/');
        }
        let (prefix, name): (&[u8], &[u8]) = if path_len <= 100 {
            (&[], &full[..])
        } else if let Some(split) = ustar_split(&full) {
            (&full[..split], &full[split + 1..])
        } else {
            pax.push((b"path", full.clone()));
            (&[], &full[..100])
        };
        let link: &[u8] = if h.link.len() <= 100 {
            &h.link
        } else {
            pax.push((b"linkpath", h.link.clone()));
            &h.link[..100]
        };
        const MAX8: u64 = 0o7777777;
        const MAX12: u64 = 0o77777777777;
        let size = if h.size > MAX12 {
            pax.push((b"size", h.size.to_string().into_bytes()));
            0
        } else {
            h.size
        };
        let uid = if h.uid > MAX8 {
            pax.push((b"uid", h.uid.to_string().into_bytes()));
            0
        } else {
            h.uid
        };
        let gid = if h.gid > MAX8 {
            pax.push((b"gid", h.gid.to_string().into_bytes()));
            0
        } else {
            h.gid
        };
        let mtime = if h.mtime < 0 || h.mtime as u64 > MAX12 {
            pax.push((b"mtime", h.mtime.to_string().into_bytes()));
            0
        } else {
            h.mtime as u64
        };

        let mut hdr = [0u8; BLOCK];
        put_bytes(&mut hdr[0..100], name);
        put_octal(&mut hdr[100..108], (h.mode & 0o7777) as u64);
        put_octal(&mut hdr[108..116], uid);
        put_octal(&mut hdr[116..124], gid);
        put_octal(&mut hdr[124..136], size);
        put_octal(&mut hdr[136..148], mtime);
        hdr[156] = h.kind.flag();
        put_bytes(&mut hdr[157..257], link);
        hdr[257..263].copy_from_slice(b"ustar\0");
        hdr[263..265].copy_from_slice(b"00");
        if matches!(h.kind, Kind::Char | Kind::Block) {
            put_octal(&mut hdr[329..337], h.devmajor.min(MAX8));
            put_octal(&mut hdr[337..345], h.devminor.min(MAX8));
        }
        put_bytes(&mut hdr[345..500], prefix);
        set_checksum(&mut hdr);

        if !pax.is_empty() || !h.xattrs.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &pax {
                pax_record(&mut body, k, v);
            }
            let mut key = Vec::new();
            for (k, v) in &h.xattrs {
                key.clear();
                key.extend_from_slice(b"SCHILY.xattr.");
                key.extend_from_slice(k);
                pax_record(&mut body, &key, v);
            }
            let mut ph = [0u8; BLOCK];
            put_bytes(&mut ph[0..100], b"././@PaxHeader");
            put_octal(&mut ph[100..108], 0o644);
            put_octal(&mut ph[108..116], 0);
            put_octal(&mut ph[116..124], 0);
            put_octal(&mut ph[124..136], body.len() as u64);
            put_octal(&mut ph[136..148], 0);
            ph[156] = b'x';
            ph[257..263].copy_from_slice(b"ustar\0");
            ph[263..265].copy_from_slice(b"00");
            set_checksum(&mut ph);
            self.put(&ph)?;
            self.put(&body)?;
            self.pad(body.len() as u64)?;
        }
        self.scratch = full;
        self.put(&hdr)
    }

    /// Content from memory (exactly the header's size), padded.
    pub fn append_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// Exactly `size` bytes of content from `r`, read straight into the chunk; fails if
    /// `r` ends early (a file that shrank while it was archived).
    pub fn copy_data(&mut self, r: &mut dyn Read, size: u64) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let space = self.buf.len() - self.pos;
            let want = space.min(left.min(usize::MAX as u64) as usize);
            let n = match r.read(&mut self.buf[self.pos..self.pos + want]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while it was being archived")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.pos += n;
            left -= n as u64;
            if self.pos == self.buf.len() {
                self.flush_chunk()?;
            }
        }
        self.pad(size)
    }

    /// Writes the end-of-archive marker (two zero blocks), hands over the last chunk and
    /// returns the sink and the archive's size.
    pub fn finish(mut self) -> io::Result<(S, u64)> {
        self.put(&NUL_BLOCK)?;
        self.put(&NUL_BLOCK)?;
        self.flush_chunk()?;
        Ok((self.sink, self.written))
    }
}

/// Where to split a path longer than 100 bytes into USTAR's prefix (<= 155) and name
/// (<= 100), at a slash; None if it cannot be.
fn ustar_split(p: &[u8]) -> Option<usize> {
    if p.len() > 256 {
        return None;
    }
    // The last slash that leaves a prefix of at most 155 bytes, with a non-empty name.
    let mut best = None;
    for (i, b) in p.iter().enumerate() {
        if *b == b'/' && i <= 155 && i > 0 && p.len() - i - 1 <= 100 && p.len() - i - 1 > 0 {
            best = Some(i);
        }
    }
    best
}

fn put_bytes(field: &mut [u8], v: &[u8]) {
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
}

/// Zero-padded octal digits filling the field but its last byte (NUL).
fn put_octal(field: &mut [u8], mut v: u64) {
    let n = field.len() - 1;
    for i in (0..n).rev() {
        field[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[n] = 0;
}

fn set_checksum(hdr: &mut [u8; BLOCK]) {
    hdr[148..156].copy_from_slice(b"        ");
    let sum: u32 = hdr.iter().map(|b| *b as u32).sum();
    // 6 octal digits, NUL, space (as GNU tar and Go write it).
    let mut f = [0u8; 8];
    put_octal(&mut f[..7], sum as u64);
    f[7] = b' ';
    hdr[148..156].copy_from_slice(&f);
}

/// One "LEN key=value\n" record; LEN counts the whole record including itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = base + 1;
    loop {
        let digits = len.to_string().len();
        if base + digits == len {
            break;
        }
        len = base + digits;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Largest PAX or GNU long-name body we read (a hostile archive could claim gigabytes).
const MAX_META: u64 = 8 << 20;

/// Most segments in one sparse map (old GNU extension headers, PAX maps): keeps a
/// hostile map from taking unbounded memory. GNU tar's maps of real files are far
/// smaller.
const MAX_SPARSE: usize = 1 << 20;

/// Where a sparse file's data lies: (offset, length) segments, sorted; everything
/// else is a hole.
struct Sparse {
    map: Vec<(u64, u64)>,
    /// The first segment not yet passed.
    next: usize,
    /// Position in the whole file.
    pos: u64,
    size: u64,
}

/// The sparse-file records of a PAX header.
#[derive(Default)]
struct PaxSparse {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    size: Option<u64>,
    /// 0.1: `offset,length,...`.
    map: Option<Vec<u8>>,
    /// 0.0: repeated `GNU.sparse.offset` / `GNU.sparse.numbytes` records.
    offsets: Vec<u64>,
    lengths: Vec<u64>,
}

impl PaxSparse {
    fn any(&self) -> bool {
        self.major.is_some() || self.size.is_some() || self.map.is_some() || !self.offsets.is_empty() || self.name.is_some()
    }
}

/// Reads a tar stream entry by entry. After [`TarReader::next`] returns a header, the
/// reader itself reads that entry's content; unread content is skipped by the next call.
pub struct TarReader<R: Read> {
    r: R,
    /// Stored content bytes of the current entry not yet read.
    left: u64,
    pad: u64,
    done: bool,
    /// Set while the current entry is a sparse file.
    sparse: Option<Sparse>,
    /// Bytes consumed from `r`.
    pub offset: u64,
}

impl<R: Read> TarReader<R> {
    pub fn new(r: R) -> TarReader<R> {
        TarReader { r, left: 0, pad: 0, done: false, sparse: None, offset: 0 }
    }

    pub fn into_inner(self) -> R {
        self.r
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = (buf.len() as u64).min(n) as usize;
            self.r.read_exact(&mut buf[..want]).map_err(truncated)?;
            n -= want as u64;
            self.offset += want as u64;
        }
        Ok(())
    }

    /// Reads a header block; None at a clean end of the stream.
    fn block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut b = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            match self.r.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(truncated(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.offset += BLOCK as u64;
        Ok(Some(b))
    }

    fn read_meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(invalid(format!("tar: extended header of {size} bytes is too large")));
        }
        let mut v = vec![0u8; size as usize];
        self.r.read_exact(&mut v).map_err(truncated)?;
        self.offset += size;
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.skip(pad)?;
        Ok(v)
    }

    /// The next entry, or None at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let rest = self.left + self.pad;
        self.left = 0;
        self.pad = 0;
        self.sparse = None;
        self.skip(rest)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut pax_sparse = PaxSparse::default();
        loop {
            let Some(b) = self.block()? else {
                self.done = true;
                return Ok(None);
            };
            if b.iter().all(|x| *x == 0) {
                // End marker (a second zero block may follow; the rest is not read).
                self.done = true;
                return Ok(None);
            }
            verify_checksum(&b)?;
            let flag = b[156];
            let size = parse_num(&b[124..136])?;
            match flag {
                b'x' => {
                    let body = self.read_meta(size)?;
                    pax.extend(parse_pax(&body)?);
                    continue;
                }
                b'g' => {
                    self.read_meta(size)?;
                    continue;
                }
                b'L' => {
                    long_name = Some(trim_nul(&self.read_meta(size)?).to_vec());
                    continue;
                }
                b'K' => {
                    long_link = Some(trim_nul(&self.read_meta(size)?).to_vec());
                    continue;
                }
                _ => {}
            }
            let posix = &b[257..263] == b"ustar\0";
            let mut path = trim_nul(&b[0..100]).to_vec();
            if posix && b[345] != 0 {
                let mut p = trim_nul(&b[345..500]).to_vec();
                p.push(b'/');
                p.extend_from_slice(&path);
                path = p;
            }
            let mut h = Header {
                kind: Kind::File,
                path,
                link: trim_nul(&b[157..257]).to_vec(),
                mode: (parse_num(&b[100..108])? & 0o7777) as u32,
                uid: parse_num(&b[108..116])?,
                gid: parse_num(&b[116..124])?,
                size,
                mtime: parse_num(&b[136..148])? as i64,
                devmajor: 0,
                devminor: 0,
                xattrs: Vec::new(),
            };
            if matches!(flag, b'3' | b'4') {
                h.devmajor = parse_num(&b[329..337])?;
                h.devminor = parse_num(&b[337..345])?;
            }
            // Old GNU sparse: up to 4 segments in the header, more in extension blocks.
            let mut gnu_sparse = None;
            if flag == b'S' {
                gnu_sparse = Some(self.old_gnu_sparse_map(&b, &h.path)?);
                h.size = parse_num(&b[483..495])?;
            }
            if let Some(n) = long_name.take() {
                h.path = n;
            }
            if let Some(l) = long_link.take() {
                h.link = l;
            }
            for (k, v) in pax.drain(..) {
                match &k[..] {
                    b"path" => h.path = v,
                    b"linkpath" => h.link = v,
                    b"size" => h.size = parse_dec(&v)?,
                    b"uid" => h.uid = parse_dec(&v)?,
                    b"gid" => h.gid = parse_dec(&v)?,
                    b"mtime" => {
                        let s = std::str::from_utf8(&v).map_err(|_| invalid("tar: bad PAX mtime".into()))?;
                        let secs = s.split('.').next().unwrap_or("0");
                        h.mtime = secs.parse().map_err(|_| invalid(format!("tar: bad PAX mtime {s:?}")))?;
                    }
                    k if k.starts_with(b"SCHILY.xattr.") => h.xattrs.push((k[13..].to_vec(), v)),
                    b"GNU.sparse.major" => pax_sparse.major = Some(v),
                    b"GNU.sparse.minor" => pax_sparse.minor = Some(v),
                    b"GNU.sparse.name" => pax_sparse.name = Some(v),
                    b"GNU.sparse.size" | b"GNU.sparse.realsize" => pax_sparse.size = Some(parse_dec(&v)?),
                    b"GNU.sparse.map" => pax_sparse.map = Some(v),
                    b"GNU.sparse.offset" => pax_sparse.offsets.push(parse_dec(&v)?),
                    b"GNU.sparse.numbytes" => pax_sparse.lengths.push(parse_dec(&v)?),
                    _ => {}
                }
                if pax_sparse.offsets.len() > MAX_SPARSE {
                    return Err(invalid(format!("tar: entry {:?}: sparse map too large", String::from_utf8_lossy(&h.path))));
                }
            }
            // For an old GNU sparse entry the header's size is the data stored; for a
            // PAX one (read below) the data stored is the size minus a 1.0 map.
            let data_size = if flag == b'S' { size } else { h.size };
            h.kind = match flag {
                b'S' => Kind::File,
                b'0' | 0 | b'7' => {
                    if h.path.ends_with(b"/") && flag == 0 {
                        Kind::Dir
                    } else {
                        Kind::File
                    }
                }
                b'1' => Kind::Hardlink,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                other => {
                    // Unknown types (GNU volume headers, ...): skip with their content.
                    self.left = data_size;
                    self.pad = (BLOCK as u64 - data_size % BLOCK as u64) % BLOCK as u64;
                    let rest = self.left + self.pad;
                    self.left = 0;
                    self.pad = 0;
                    self.skip(rest)?;
                    let _ = other;
                    continue;
                }
            };
            // Only regular files carry content; a hardlink's size field may be non-zero
            // in some writers, and its content (if any) still occupies the stream.
            if h.kind != Kind::File {
                h.size = 0;
            }
            self.left = data_size;
            self.pad = (BLOCK as u64 - data_size % BLOCK as u64) % BLOCK as u64;
            if h.kind != Kind::File {
                // Not exposed as content, but skipped by the next call.
                self.pad += self.left;
                self.left = 0;
            } else if let Some(map) = gnu_sparse {
                self.start_sparse(&h.path, map, h.size)?;
            } else if pax_sparse.any() {
                self.pax_sparse(&mut h, pax_sparse)?;
            }
            return Ok(Some(h));
        }
    }

    /// The segments of an old GNU sparse entry: the header's four, then 21 in each
    /// extension block while the "is extended" byte is set.
    fn old_gnu_sparse_map(&mut self, b: &[u8; BLOCK], path: &[u8]) -> io::Result<Vec<(u64, u64)>> {
        let mut map = Vec::new();
        let add = |map: &mut Vec<(u64, u64)>, field: &[u8]| -> io::Result<()> {
            // An unused slot is zero-filled.
            if field[0] != 0 {
                map.push((parse_num(&field[..12])?, parse_num(&field[12..24])?));
            }
            Ok(())
        };
        for i in 0..4 {
            add(&mut map, &b[386 + 24 * i..386 + 24 * (i + 1)])?;
        }
        let mut extended = b[482] != 0;
        while extended {
            let ext = self.block()?.ok_or_else(|| truncated(io::ErrorKind::UnexpectedEof.into()))?;
            for i in 0..21 {
                add(&mut map, &ext[24 * i..24 * (i + 1)])?;
            }
            if map.len() > MAX_SPARSE {
                return Err(invalid(format!("tar: entry {:?}: sparse map too large", String::from_utf8_lossy(path))));
            }
            extended = ext[504] != 0;
        }
        Ok(map)
    }

    /// A PAX sparse entry (GNU formats 0.0, 0.1, 1.0): the real name and size, the map
    /// (for 1.0 read from the start of the content).
    fn pax_sparse(&mut self, h: &mut Header, p: PaxSparse) -> io::Result<()> {
        let bad = |what: &str| invalid(format!("tar: entry {:?}: bad sparse map: {what}", String::from_utf8_lossy(&h.path)));
        let size = p.size.ok_or_else(|| bad("no GNU.sparse.size or GNU.sparse.realsize"))?;
        let map = match (p.major.as_deref(), p.minor.as_deref()) {
            (Some(b"1"), Some(b"0")) => self.sparse_map_1_0().map_err(|e| bad(&e.to_string()))?,
            (Some(b"0") | None, _) => match &p.map {
                Some(text) => {
                    let nums = if text.is_empty() { Vec::new() } else { text.split(|c| *c == b',').map(parse_dec).collect::<io::Result<Vec<u64>>>()? };
                    if nums.len() % 2 != 0 || nums.len() / 2 > MAX_SPARSE {
                        return Err(bad("GNU.sparse.map is not offset,length pairs"));
                    }
                    nums.chunks(2).map(|c| (c[0], c[1])).collect()
                }
                None if p.offsets.len() == p.lengths.len() => p.offsets.iter().copied().zip(p.lengths.iter().copied()).collect(),
                None => return Err(bad("GNU.sparse.offset and GNU.sparse.numbytes do not pair up")),
            },
            (Some(major), _) => {
                return Err(unsupported(&format!(
                    "tar: entry {:?}: sparse format {} is not supported",
                    String::from_utf8_lossy(&h.path),
                    String::from_utf8_lossy(major)
                )))
            }
        };
        if let Some(n) = p.name {
            h.path = n;
        }
        h.size = size;
        self.start_sparse(&h.path, map, size)
    }

    /// Reads the 1.0 map at the start of the content: decimal numbers one a line (the
    /// count, then offset and length pairs), padded to a block.
    fn sparse_map_1_0(&mut self) -> crate::Result<Vec<(u64, u64)>> {
        let mut text: Vec<u8> = Vec::new();
        let mut nums: Vec<u64> = Vec::new();
        let mut want: Option<usize> = None;
        let complete = |nums: &Vec<u64>, want: Option<usize>| want.is_some_and(|w| nums.len() == 1 + 2 * w);
        while !complete(&nums, want) {
            if self.left < BLOCK as u64 {
                return Err("the map runs past the entry's data".into());
            }
            let mut blk = [0u8; BLOCK];
            self.r.read_exact(&mut blk).map_err(|e| truncated(e).to_string())?;
            self.offset += BLOCK as u64;
            self.left -= BLOCK as u64;
            text.extend_from_slice(&blk);
            // Complete lines only; a number may continue in the next block.
            while let Some(nl) = text.iter().position(|c| *c == b'\n') {
                if complete(&nums, want) {
                    break;
                }
                let n = std::str::from_utf8(&text[..nl]).ok().and_then(|t| t.parse::<u64>().ok()).ok_or("a line is not a number")?;
                text.drain(..=nl);
                nums.push(n);
                if nums.len() == 1 {
                    if n as usize > MAX_SPARSE {
                        return Err("too many segments".into());
                    }
                    want = Some(n as usize);
                }
            }
            if !complete(&nums, want) && text.len() > 64 {
                return Err("a number is too long".into());
            }
        }
        Ok(nums[1..].chunks(2).map(|c| (c[0], c[1])).collect())
    }

    /// Checks a map against the file size and the data stored, and starts reading it.
    fn start_sparse(&mut self, path: &[u8], map: Vec<(u64, u64)>, size: u64) -> io::Result<()> {
        let bad = |what: String| invalid(format!("tar: entry {:?}: bad sparse map: {what}", String::from_utf8_lossy(path)));
        let mut end = 0u64;
        let mut stored = 0u64;
        for &(off, len) in &map {
            let seg_end = off.checked_add(len).ok_or_else(|| bad("a segment overflows".into()))?;
            if off < end || seg_end > size {
                return Err(bad(format!("segment {off}+{len} overlaps another or lies outside the file's {size} bytes")));
            }
            end = seg_end;
            stored += len;
        }
        if stored != self.left {
            return Err(bad(format!("the segments hold {stored} bytes, the entry stores {}", self.left)));
        }
        self.sparse = Some(Sparse { map, next: 0, pos: 0, size });
        Ok(())
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(sp) = &mut self.sparse {
            if sp.pos >= sp.size || buf.is_empty() {
                return Ok(0);
            }
            while sp.map.get(sp.next).is_some_and(|&(off, len)| off + len <= sp.pos) {
                sp.next += 1;
            }
            let (off, len) = sp.map.get(sp.next).copied().unwrap_or((sp.size, 0));
            if sp.pos < off {
                // A hole.
                let n = (buf.len() as u64).min(off - sp.pos) as usize;
                buf[..n].fill(0);
                sp.pos += n as u64;
                return Ok(n);
            }
            let want = (buf.len() as u64).min(off + len - sp.pos) as usize;
            let n = self.r.read(&mut buf[..want])?;
            if n == 0 {
                return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
            }
            sp.pos += n as u64;
            self.left -= n as u64;
            self.offset += n as u64;
            return Ok(n);
        }
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        self.left -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }
}

/// read_exact's own "failed to fill whole buffer" said as what it means here; an
/// error with words of its own (a truncated gzip stream below us) is kept.
fn truncated(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_none() {
        io::Error::new(io::ErrorKind::UnexpectedEof, "tar: unexpected end of archive")
    } else {
        e
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn unsupported(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, msg.to_string())
}

fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|x| *x == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// An octal field (spaces/NULs around it), or GNU/star base-256 when the high bit is set.
fn parse_num(f: &[u8]) -> io::Result<u64> {
    if f[0] & 0x80 != 0 {
        if f[0] == 0xff {
            return Err(invalid("tar: negative number in header".into()));
        }
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for b in &f[1..] {
            if v >> 56 != 0 {
                return Err(invalid("tar: number in header overflows".into()));
            }
            v = (v << 8) | *b as u64;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut started = false;
    for b in f {
        match *b {
            b'0'..=b'7' => {
                started = true;
                v = v.checked_mul(8).ok_or_else(|| invalid("tar: number in header overflows".into()))? + (*b - b'0') as u64;
            }
            b' ' | 0 if !started => {}
            b' ' | 0 => break,
            _ => return Err(invalid(format!("tar: invalid number in header: {:?}", String::from_utf8_lossy(f)))),
        }
    }
    Ok(v)
}

fn parse_dec(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| invalid(format!("tar: invalid PAX number {:?}", String::from_utf8_lossy(v))))
}

fn verify_checksum(b: &[u8; BLOCK]) -> io::Result<()> {
    let not_tar = || invalid("tar: header checksum mismatch (not a tar archive, or a corrupt one)".into());
    let want = parse_num(&b[148..156]).map_err(|_| not_tar())?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { *x };
        unsigned += x as u64;
        signed += x as i8 as i64;
    }
    if want == unsigned || want as i64 == signed {
        Ok(())
    } else {
        Err(not_tar())
    }
}

fn parse_pax(mut body: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.iter().all(|b| *b == 0) {
            break;
        }
        let sp = body.iter().position(|b| *b == b' ').ok_or_else(|| invalid("tar: bad PAX record".into()))?;
        let len: usize = std::str::from_utf8(&body[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|l| *l > sp + 1 && *l <= body.len())
            .ok_or_else(|| invalid("tar: bad PAX record length".into()))?;
        let rec = &body[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").ok_or_else(|| invalid("tar: PAX record without newline".into()))?;
        let eq = rec.iter().position(|b| *b == b'=').ok_or_else(|| invalid("tar: PAX record without '='".into()))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        body = &body[len..];
    }
    Ok(out)
}

/// Normalizes an entry path: leading `/` and `./` dropped, empty and `.` components
/// removed. Returns None for a path with a `..` component (refused, never resolved).
/// The root itself comes back as an empty vector.
pub fn clean_path(p: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(p.len());
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
        let mut w = TarWriter::new(WriteSink(Vec::new()), 1024);
        for (h, d) in entries {
            w.append_header(h).unwrap();
            w.append_data(d).unwrap();
        }
        let (WriteSink(v), n) = w.finish().unwrap();
        assert_eq!(v.len() as u64, n);
        v
    }

    fn read(data: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let mut r = TarReader::new(data);
        let mut out = Vec::new();
        while let Some(h) = r.next_entry().unwrap() {
            let mut d = Vec::new();
            r.read_to_end(&mut d).unwrap();
            out.push((h, d));
        }
        out
    }

    #[test]
    fn round_trips_all_kinds_and_long_values() {
        let long = "d/".repeat(80) + "file";
        let long_dir = "x".repeat(120);
        let entries = vec![
            (Header { kind: Kind::Dir, path: b"bin".to_vec(), mode: 0o755, mtime: 5, ..Default::default() }, vec![]),
            (
                Header {
                    kind: Kind::File,
                    path: b"bin/a".to_vec(),
                    mode: 0o4755,
                    uid: 1000,
                    gid: 1000,
                    size: 3,
                    mtime: 1_700_000_000,
                    xattrs: vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2, 0xff])],
                    ..Default::default()
                },
                b"abc".to_vec(),
            ),
            (Header { kind: Kind::Hardlink, path: b"bin/b".to_vec(), link: b"bin/a".to_vec(), ..Default::default() }, vec![]),
            (Header { kind: Kind::Symlink, path: b"bin/s".to_vec(), link: "t/".repeat(70).into_bytes(), ..Default::default() }, vec![]),
            (Header { kind: Kind::Char, path: b"dev/null".to_vec(), mode: 0o666, devmajor: 1, devminor: 3, ..Default::default() }, vec![]),
            (Header { kind: Kind::Block, path: b"dev/sda".to_vec(), devmajor: 8, devminor: 0, ..Default::default() }, vec![]),
            (Header { kind: Kind::Fifo, path: b"p".to_vec(), mode: 0o600, ..Default::default() }, vec![]),
            (Header { kind: Kind::File, path: long.clone().into_bytes(), size: 1, uid: 5_000_000, mtime: -7, ..Default::default() }, b"z".to_vec()),
            (Header { kind: Kind::Dir, path: long_dir.clone().into_bytes(), ..Default::default() }, vec![]),
        ];
        let data = write(&entries);
        assert_eq!(data.len() % BLOCK, 0);
        let back = read(&data);
        assert_eq!(back.len(), entries.len());
        for ((a, ad), (b, bd)) in entries.iter().zip(&back) {
            let mut b = b.clone();
            if b.kind == Kind::Dir {
                assert_eq!(b.path.pop(), Some(b'/'));
            }
            assert_eq!(a, &b);
            assert_eq!(ad, bd);
        }
        // Same input, same bytes.
        assert_eq!(write(&entries), data);
        // GNU tar reads it.
        let dir = std::env::temp_dir().join(format!("berth-tar-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.tar"), &data).unwrap();
        let out = std::process::Command::new("tar").arg("-tvf").arg(dir.join("t.tar")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&long), "{text}");
        assert!(text.contains("bin/b link to bin/a"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_gnu_tar_output() {
        // GNU format with long names (L entries), as `tar --format=gnu` writes.
        let dir = std::env::temp_dir().join(format!("berth-tar-gnu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let long = "n".repeat(150);
        std::fs::create_dir_all(dir.join("src").join(&long)).unwrap();
        std::fs::write(dir.join("src").join(&long).join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink("l".repeat(130), dir.join("src/sym")).unwrap();
        for fmt in ["gnu", "posix", "v7"] {
            let tarfile = dir.join(format!("{fmt}.tar"));
            let st = std::process::Command::new("tar")
                .args(["--format", fmt, "-cf"])
                .arg(&tarfile)
                .arg("-C")
                .arg(dir.join("src"))
                .arg(".")
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            if fmt == "v7" && !st.success() {
                continue; // v7 cannot hold the long names
            }
            assert!(st.success());
            let entries = read(&std::fs::read(&tarfile).unwrap());
            let f = entries.iter().find(|(h, _)| h.path.ends_with(b"/f")).unwrap_or_else(|| panic!("{fmt}: no f"));
            assert_eq!(clean_path(&f.0.path).unwrap(), format!("{long}/f").into_bytes());
            assert_eq!(f.1, b"hello");
            let s = entries.iter().find(|(h, _)| h.kind == Kind::Symlink).unwrap();
            assert_eq!(s.0.link, "l".repeat(130).into_bytes());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_garbage() {
        let mut data = write(&[(Header { path: b"a".to_vec(), size: 1, ..Default::default() }, b"x".to_vec())]);
        data[0] = b'b'; // checksum no longer matches
        assert!(TarReader::new(&data[..]).next_entry().is_err());
        let data = write(&[(Header { path: b"a".to_vec(), size: 600, ..Default::default() }, vec![7; 600])]);
        let mut r = TarReader::new(&data[..1000]);
        r.next_entry().unwrap().unwrap();
        let mut d = Vec::new();
        assert!(r.read_to_end(&mut d).is_err(), "truncated content must fail");
    }

    /// A 3 MiB file of 12 data segments (more than an old GNU header holds, so
    /// extension blocks are used) between holes, ending in a hole.
    fn sparse_file(path: &std::path::Path) -> Vec<u8> {
        use std::io::{Seek, SeekFrom};
        let mut want = vec![0u8; 3 << 20];
        let mut f = std::fs::File::create(path).unwrap();
        for i in 0..12u64 {
            let at = i * 200_000 + 7;
            let data: Vec<u8> = (0..5000u32).map(|j| (j % 251) as u8 ^ i as u8 | 1).collect();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&data).unwrap();
            want[at as usize..at as usize + data.len()].copy_from_slice(&data);
        }
        f.set_len(want.len() as u64).unwrap();
        want
    }

    #[test]
    fn reads_gnu_sparse_files_in_every_format() {
        let dir = std::env::temp_dir().join(format!("berth-tar-sparse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let want = sparse_file(&dir.join("src/holes"));
        std::fs::write(dir.join("src/plain"), b"plain file\n").unwrap();
        for fmt in [
            &["--format=gnu"][..],
            &["--format=posix", "--sparse-version=0.0"],
            &["--format=posix", "--sparse-version=0.1"],
            &["--format=posix", "--sparse-version=1.0"],
        ] {
            let tarfile = dir.join("s.tar");
            let st =
                std::process::Command::new("tar").arg("--sparse").args(fmt).arg("-cf").arg(&tarfile).arg("-C").arg(dir.join("src")).arg(".").status().unwrap();
            assert!(st.success(), "{fmt:?}");
            let data = std::fs::read(&tarfile).unwrap();
            assert!(data.len() < want.len() / 4, "{fmt:?}: the archive holds the holes (does the temp dir's filesystem keep holes?)");
            let entries = read(&data);
            let holes = entries.iter().find(|(h, _)| h.path.ends_with(b"holes")).unwrap_or_else(|| {
                panic!("{fmt:?}: no entry holes in {:?}", entries.iter().map(|e| String::from_utf8_lossy(&e.0.path).into_owned()).collect::<Vec<_>>())
            });
            assert_eq!(clean_path(&holes.0.path).unwrap(), b"holes", "{fmt:?}: the real name");
            assert_eq!(holes.0.size, want.len() as u64, "{fmt:?}");
            assert!(holes.1 == want, "{fmt:?}: content differs");
            let plain = entries.iter().find(|(h, _)| h.path.ends_with(b"plain")).unwrap();
            assert_eq!(plain.1, b"plain file\n", "{fmt:?}: the entry after the sparse one");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_sparse_maps_are_refused_naming_the_entry() {
        // An old GNU sparse header by hand: one 10-byte segment at 100 of a 50-byte
        // file (outside it), then one whose segments do not add up to the data.
        let header = |segments: &[(u64, u64)], realsize: u64, stored: u64| {
            let mut b = [0u8; BLOCK];
            put_bytes(&mut b[0..100], b"dir/file");
            put_octal(&mut b[100..108], 0o644);
            put_octal(&mut b[124..136], stored);
            b[156] = b'S';
            b[257..265].copy_from_slice(b"ustar  \0");
            for (i, (off, len)) in segments.iter().enumerate() {
                put_octal(&mut b[386 + 24 * i..398 + 24 * i], *off);
                put_octal(&mut b[398 + 24 * i..410 + 24 * i], *len);
            }
            put_octal(&mut b[483..495], realsize);
            set_checksum(&mut b);
            let mut v = b.to_vec();
            v.extend(std::iter::repeat_n(b'x', stored as usize));
            v.resize(v.len().div_ceil(BLOCK) * BLOCK + 2 * BLOCK, 0);
            v
        };
        for (data, why) in [
            (header(&[(100, 10)], 50, 10), "lies outside the file"),
            (header(&[(0, 10)], 50, 20), "the segments hold 10 bytes, the entry stores 20"),
            (header(&[(20, 10), (0, 10)], 50, 20), "overlaps"),
        ] {
            let e = TarReader::new(&data[..]).next_entry().unwrap_err().to_string();
            assert!(e.contains("entry \"dir/file\"") && e.contains(why), "{e}");
        }
        // A good one: holes read as zeros.
        let data = header(&[(5, 3), (40, 2)], 50, 5);
        let back = read(&data);
        let mut want = vec![0u8; 50];
        want[5..8].copy_from_slice(b"xxx");
        want[40..42].copy_from_slice(b"xx");
        assert_eq!(back[0].1, want);
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(clean_path(b"/abs/x").unwrap(), b"abs/x");
        assert_eq!(clean_path(b"./").unwrap(), b"");
        assert!(clean_path(b"a/../../etc").is_none());
        assert!(clean_path(b"..").is_none());
    }
}
