//! Parallel, adaptive gzip (the pigz technique), deterministic whatever the thread count.
//!
//! The tar stream arrives in fixed-size chunks ("jobs"). Each job is compressed on its
//! own into raw deflate blocks that end on a byte boundary (sync flush) and never set the
//! final bit, primed with the last 32 KiB before it as the dictionary, so the concatenation
//! of the jobs' outputs is one valid deflate stream with back-references across jobs. A
//! gzip header, an empty final block and the trailer (CRC-32 combined from the jobs'
//! CRCs, length mod 2^32) wrap it.
//!
//! Adaptive: each 8 KiB of a job is classed by its byte entropy. Runs of high-entropy
//! data (already compressed files, random bytes), which deflate cannot shrink and which
//! cost the most to try, are written as stored blocks at memcpy speed; runs of the rest
//! go through zlib-rs at the chosen level. The classing depends only on the data, so the
//! output is the same on every machine and for every number of threads.

use flate2::{Compress, Crc, FlushCompress};
use std::io;

/// Uncompressed bytes per classed sub-block.
const SUB: usize = 8 << 10;
/// The deflate window: how much preceding data primes a segment.
pub const WINDOW: usize = 32 << 10;
/// Dictionary size for a compressed segment that follows a stored one.
const PRIME_AFTER_STORED: usize = 0;
/// Bits per byte above which a sub-block is stored, not compressed.
const STORE_ENTROPY: f64 = 7.5;

/// gzip header: no name, mtime 0, XFL 0, OS 255 (unknown).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block with fixed codes: BFINAL=1, BTYPE=01, end-of-block.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Shannon entropy (bits per byte) above the threshold?
fn incompressible(b: &[u8]) -> bool {
    if b.len() < 1024 {
        return false;
    }
    let mut h = [[0u32; 256]; 4];
    let mut it = b.chunks_exact(4);
    for c in &mut it {
        h[0][c[0] as usize] += 1;
        h[1][c[1] as usize] += 1;
        h[2][c[2] as usize] += 1;
        h[3][c[3] as usize] += 1;
    }
    for &x in it.remainder() {
        h[0][x as usize] += 1;
    }
    let n = b.len() as f64;
    let mut e = 0.0;
    for (((a, b), c), d) in h[0].iter().zip(&h[1]).zip(&h[2]).zip(&h[3]) {
        let c = a + b + c + d;
        if c > 0 {
            let p = c as f64 / n;
            e -= p * p.log2();
        }
    }
    e > STORE_ENTROPY
}

fn deflate(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> io::Result<()> {
    loop {
        if out.capacity() - out.len() < 64 << 10 {
            out.reserve(256 << 10);
        }
        let before = c.total_in();
        c.compress_vec(input, out, flush).map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is taken and the call did not fill the output space.
        if input.is_empty() && out.capacity() > out.len() {
            return Ok(());
        }
    }
}

/// Stored blocks (each at most 65535 bytes), not final. The stream is byte-aligned here.
fn stored(data: &[u8], out: &mut Vec<u8>) {
    for piece in data.chunks(65_535) {
        let len = piece.len() as u16;
        out.push(0x00); // BFINAL=0, BTYPE=00, padding to the byte boundary
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

/// A reusable per-thread compressor.
pub struct JobCompressor {
    c: Compress,
    level: u32,
    ctx: Vec<u8>,
    /// Sub-block size and dictionary after stored data (SUB, PRIME_AFTER_STORED; the
    /// benchmark varies them).
    pub(crate) sub: usize,
    pub(crate) prime_after_stored: usize,
}

impl JobCompressor {
    pub fn new(level: u32) -> JobCompressor {
        JobCompressor {
            c: Compress::new(flate2::Compression::new(level), false),
            level,
            ctx: Vec::with_capacity(WINDOW),
            sub: SUB,
            prime_after_stored: PRIME_AFTER_STORED,
        }
    }

    /// Compresses one job: `dict` is the (up to 32 KiB) data right before `data`. Appends
    /// byte-aligned, non-final deflate blocks to `out`; returns the job's CRC.
    pub fn job(&mut self, dict: &[u8], data: &[u8], out: &mut Vec<u8>) -> io::Result<Crc> {
        let mut crc = Crc::new();
        crc.update(data);
        if self.level == 0 {
            stored(data, out);
            return Ok(crc);
        }
        let mut i = 0;
        while i < data.len() {
            // A segment: consecutive sub-blocks of the same class.
            let sub = self.sub;
            let class = incompressible(&data[i..(i + sub).min(data.len())]);
            let mut j = (i + sub).min(data.len());
            while j < data.len() && incompressible(&data[j..(j + sub).min(data.len())]) == class {
                j = (j + sub).min(data.len());
            }
            let seg = &data[i..j];
            if class {
                stored(seg, out);
            } else {
                // Prime with the data right before the segment (from dict and/or this
                // job): 32 KiB at the start of a job; nothing after stored
                // (incompressible) data, where matches are unlikely and priming costs
                // more than it gains (measured: bench_pgzip_settings).
                let want = if i > 0 { self.prime_after_stored } else { WINDOW };
                self.ctx.clear();
                if i < want {
                    let from_dict = (want - i).min(dict.len());
                    self.ctx.extend_from_slice(&dict[dict.len() - from_dict..]);
                    self.ctx.extend_from_slice(&data[..i]);
                } else {
                    self.ctx.extend_from_slice(&data[i - want..i]);
                }
                self.c.reset();
                if !self.ctx.is_empty() {
                    self.c.set_dictionary(&self.ctx).map_err(|e| io::Error::other(format!("deflate dictionary: {e}")))?;
                }
                deflate(&mut self.c, seg, out, FlushCompress::None)?;
                deflate(&mut self.c, &[], out, FlushCompress::Sync)?;
            }
            i = j;
        }
        Ok(crc)
    }
}

/// The gzip trailer for the whole stream.
pub fn trailer(crc: &Crc, total: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.sum().to_le_bytes());
    t[4..].copy_from_slice(&(total as u32).to_le_bytes());
    t
}

/// Compresses `data` in one go with `threads`-independent output (for tests and small
/// blobs): header, jobs of `job` bytes, final block, trailer.
pub fn compress_all(data: &[u8], level: u32, job: usize) -> io::Result<Vec<u8>> {
    let mut out = HEADER.to_vec();
    let mut jc = JobCompressor::new(level);
    let mut crc = Crc::new();
    let mut start = 0;
    while start < data.len() {
        let end = (start + job).min(data.len());
        let dict = &data[start.saturating_sub(WINDOW)..start];
        let c = jc.job(dict, &data[start..end], &mut out)?;
        crc.combine(&c);
        start = end;
    }
    out.extend_from_slice(&FINAL_BLOCK);
    out.extend_from_slice(&trailer(&crc, data.len() as u64));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn mixed(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x12345678;
        let mut v = Vec::with_capacity(n);
        let mut k = 0;
        while v.len() < n {
            let size = 500 + (k * 7919) % 90_000;
            let start = v.len();
            while v.len() - start < size && v.len() < n {
                if k % 3 == 0 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    v.extend_from_slice(&x.to_le_bytes());
                } else {
                    v.extend_from_slice(b"layer text compresses well; ");
                }
            }
            k += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn output_is_valid_gzip_and_stores_noise() {
        let data = mixed(3 << 20);
        for level in [0, 1, 6] {
            let gz = compress_all(&data, level, 1 << 20).unwrap();
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "level {level}");
            // gzip(1) agrees (CRC and length checked).
            let dir = std::env::temp_dir().join(format!("berth-pgzip-{}-{level}", std::process::id()));
            std::fs::write(&dir, &gz).unwrap();
            let st = std::process::Command::new("gzip").arg("-t").arg(&dir).status().unwrap();
            std::fs::remove_file(&dir).unwrap();
            assert!(st.success(), "gzip -t, level {level}");
        }
        // Noise is stored, not expanded by more than the block headers.
        let mut x: u64 = 99;
        let noise: Vec<u8> = (0..(1 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let gz = compress_all(&noise, 1, 1 << 20).unwrap();
        assert!(gz.len() < noise.len() + noise.len() / 1000 + 64, "{} for {}", gz.len(), noise.len());
        // Text still compresses.
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(30_000);
        assert!(compress_all(&text, 1, 1 << 20).unwrap().len() < text.len() / 10);
    }

    #[test]
    fn jobs_reference_the_previous_job() {
        // The same 1 MiB twice: the second job compresses to almost nothing only if it
        // may refer back into the first (within the 32 KiB window it only can for the
        // start; use a short period instead).
        let unit: Vec<u8> = (0..20_000u32).flat_map(|i| (i.wrapping_mul(2654435761) >> 7).to_le_bytes()).collect();
        let data: Vec<u8> = unit.iter().cycle().take(2 << 20).copied().collect();
        let whole = compress_all(&data, 1, 1 << 20).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&whole[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
