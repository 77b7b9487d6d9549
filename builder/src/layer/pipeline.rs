//! The layer-writing pipeline. The tar producer (the caller's thread) fills 1 MiB chunks
//! and hashes each one for the diff_id; then
//!
//! - gzip: the chunks are compressed in parallel by one worker per core (pgzip.rs: pigz's
//!   technique, output independent of the thread count) and a writer thread puts the
//!   results back in order, hashes them for the blob digest and writes the temp file;
//! - zstd / none: one thread compresses (or copies), hashes and writes.
//!
//! Chunks are recycled (the writer hands each back once its output is on its way to the
//! file), so memory stays bounded and steady state allocates nothing. At the end the temp
//! file is fsync'ed and renamed to its digest name in the store.

use super::compress::{Compression, Encoder};
use super::pgzip;
use super::tar::{ChunkSink, TarWriter};
use crate::store::hash::{HashWriter, Hasher};
use crate::store::{Store, TempFile};
use berth_spec::image::{Descriptor, Digest};
use flate2::Crc;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Chunk size handed between the threads (also the unit of parallel gzip).
pub const CHUNK: usize = 1 << 20;

/// A layer blob written into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// sha256 of the uncompressed tar: the config's rootfs.diff_ids entry.
    pub diff_id: Digest,
    /// The compressed blob: media type, digest, size (for the manifest).
    pub descriptor: Descriptor,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// Entries written (set by diff and import).
    pub entries: u64,
}

type Done = io::Result<(Digest, u64)>;

/// Compression threads for gzip: one per core, at most 8.
fn workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8)
}

struct Job {
    seq: u64,
    buf: Vec<u8>,
    len: usize,
    dict: Vec<u8>,
}

struct Compressed {
    seq: u64,
    buf: Vec<u8>,
    out: Vec<u8>,
    crc: Crc,
    len: usize,
}

enum Backend {
    /// zstd / none: one thread with a streaming encoder.
    Serial { tx: SyncSender<(Vec<u8>, usize)> },
    /// gzip: workers + an ordering writer.
    Parallel { jobs: SyncSender<Job>, seq: u64, tail: Vec<u8> },
}

/// The [`ChunkSink`] of the pipeline.
pub struct PipeSink {
    backend: Option<Backend>,
    back: Receiver<Vec<u8>>,
    diff: Hasher,
    allocated: usize,
    max_in_flight: usize,
    writer: Option<JoinHandle<Done>>,
    workers: Vec<JoinHandle<()>>,
}

impl PipeSink {
    fn stop(&mut self) -> Option<thread::Result<Done>> {
        self.backend.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.writer.take().map(|h| h.join())
    }

    fn worker_error(&mut self) -> io::Error {
        match self.stop() {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("layer compressor thread panicked"),
            _ => io::Error::other("layer compressor thread stopped"),
        }
    }
}

use std::thread;

impl ChunkSink for PipeSink {
    fn consume(&mut self, chunk: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
        self.diff.update(&chunk[..len]);
        let size = chunk.len();
        let sent = match self.backend.as_mut() {
            Some(Backend::Serial { tx }) => tx.send((chunk, len)).is_ok(),
            Some(Backend::Parallel { jobs, seq, tail }) => {
                // The next job's dictionary: the last 32 KiB of the stream so far.
                let mut next_tail = Vec::with_capacity(pgzip::WINDOW);
                if len < pgzip::WINDOW {
                    let keep = (pgzip::WINDOW - len).min(tail.len());
                    next_tail.extend_from_slice(&tail[tail.len() - keep..]);
                }
                next_tail.extend_from_slice(&chunk[len.saturating_sub(pgzip::WINDOW)..len]);
                let dict = std::mem::replace(tail, next_tail);
                let job = Job { seq: *seq, buf: chunk, len, dict };
                *seq += 1;
                jobs.send(job).is_ok()
            }
            None => false,
        };
        if !sent {
            return Err(self.worker_error());
        }
        if let Ok(b) = self.back.try_recv() {
            return Ok(b);
        }
        if self.allocated < self.max_in_flight {
            self.allocated += 1;
            return Ok(vec![0; size]);
        }
        match self.back.recv() {
            Ok(b) => Ok(b),
            Err(_) => Err(self.worker_error()),
        }
    }
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    thread::Builder::new().name(name.into()).spawn(f)
}

/// Writes one layer tar into the store, compressed.
pub struct LayerWriter {
    pub tar: TarWriter<PipeSink>,
    tmp: TempFile,
    compression: Compression,
}

impl LayerWriter {
    pub fn new(store: &Store, compression: Compression) -> io::Result<LayerWriter> {
        let mut tmp = store.temp_file()?;
        let file: File = tmp.file().try_clone()?;
        let sink = match compression {
            Compression::Gzip(level) => parallel_gzip(file, level)?,
            c => serial(file, c)?,
        };
        Ok(LayerWriter { tar: TarWriter::new(sink, CHUNK), tmp, compression })
    }

    /// Ends the tar, waits for the compressor and commits the blob to the store.
    pub fn finish(self, store: &Store) -> io::Result<LayerBlob> {
        self.finish_pending()?.commit(store)
    }

    /// Ends the tar and waits for the compressor; the blob stays a temp file until
    /// [`PendingBlob::commit`] (so that it can be checked first).
    pub fn finish_pending(self) -> io::Result<PendingBlob> {
        let (mut sink, tar_size) = self.tar.finish()?;
        let (digest, size) = match sink.stop() {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(io::Error::other("layer compressor thread panicked")),
            None => return Err(io::Error::other("layer compressor thread missing")),
        };
        let (diff_id, n) = std::mem::take(&mut sink.diff).finish();
        debug_assert_eq!(n, tar_size);
        let blob = LayerBlob { diff_id, descriptor: Descriptor::new(self.compression.media_type(), digest, size), tar_size, entries: 0 };
        Ok(PendingBlob { tmp: self.tmp, blob })
    }
}

/// A finished layer blob not yet in the store (removed on drop unless committed).
pub struct PendingBlob {
    tmp: TempFile,
    pub blob: LayerBlob,
}

impl PendingBlob {
    /// The temp file holding the blob.
    pub fn path(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// Moves the blob to its digest name in the store.
    pub fn commit(self, store: &Store) -> io::Result<LayerBlob> {
        store.commit_blob(self.tmp, &self.blob.descriptor.digest)?;
        Ok(self.blob)
    }
}

fn serial(file: File, compression: Compression) -> io::Result<PipeSink> {
    let (tx, rx) = sync_channel::<(Vec<u8>, usize)>(2);
    let (back_tx, back) = sync_channel::<Vec<u8>>(4);
    let writer = spawn("berth-layer-z", move || -> Done {
        let out = HashWriter::new(BufWriter::with_capacity(CHUNK, file));
        let mut enc = Encoder::new(out, compression)?;
        while let Ok((chunk, len)) = rx.recv() {
            enc.write_all(&chunk[..len])?;
            let _ = back_tx.try_send(chunk);
        }
        let (mut w, digest, n) = enc.finish()?.finish();
        w.flush()?;
        Ok((digest, n))
    })?;
    Ok(PipeSink { backend: Some(Backend::Serial { tx }), back, diff: Hasher::new(), allocated: 1, max_in_flight: 4, writer: Some(writer), workers: Vec::new() })
}

fn parallel_gzip(file: File, level: u32) -> io::Result<PipeSink> {
    let n = workers();
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(n);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let (res_tx, res_rx) = channel::<io::Result<Compressed>>();
    let max_in_flight = 2 * n + 2;
    let (back_tx, back) = sync_channel::<Vec<u8>>(max_in_flight + 1);
    let pool: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));

    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let jobs_rx = jobs_rx.clone();
        let res_tx: Sender<io::Result<Compressed>> = res_tx.clone();
        let pool = pool.clone();
        workers.push(spawn(&format!("berth-gzip-{i}"), move || {
            let mut jc = pgzip::JobCompressor::new(level);
            loop {
                let job = match jobs_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let mut out = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
                out.clear();
                let r = jc.job(&job.dict, &job.buf[..job.len], &mut out).map(|crc| Compressed { seq: job.seq, buf: job.buf, out, crc, len: job.len });
                if res_tx.send(r).is_err() {
                    return;
                }
            }
        })?);
    }
    drop(res_tx);

    let writer = spawn("berth-gzip-w", move || -> Done {
        let mut w = HashWriter::new(BufWriter::with_capacity(CHUNK, file));
        w.write_all(&pgzip::HEADER)?;
        let mut pending: BTreeMap<u64, Compressed> = BTreeMap::new();
        let mut next = 0u64;
        let mut crc = Crc::new();
        let mut total = 0u64;
        while let Ok(r) = res_rx.recv() {
            let c = r?;
            pending.insert(c.seq, c);
            while let Some(c) = pending.remove(&next) {
                w.write_all(&c.out)?;
                crc.combine(&c.crc);
                total += c.len as u64;
                next += 1;
                let _ = back_tx.try_send(c.buf);
                if let Ok(mut p) = pool.lock() {
                    p.push(c.out);
                }
            }
        }
        if !pending.is_empty() {
            return Err(io::Error::other("parallel gzip: a chunk went missing"));
        }
        w.write_all(&pgzip::FINAL_BLOCK)?;
        w.write_all(&pgzip::trailer(&crc, total))?;
        let (mut inner, digest, size) = w.finish();
        inner.flush()?;
        Ok((digest, size))
    })?;
    Ok(PipeSink {
        backend: Some(Backend::Parallel { jobs: jobs_tx, seq: 0, tail: Vec::new() }),
        back,
        diff: Hasher::new(),
        allocated: 1,
        max_in_flight,
        writer: Some(writer),
        workers,
    })
}
