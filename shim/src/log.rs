//! The container log.
//!
//! k8s-file, as the CRI defines it, one entry per line:
//!     `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>\n`
//! F marks a complete line (its newline is not part of <text>); P a partial one, whose
//! rest follows in the next entries of the same stream. Timestamps are UTC with nine
//! fractional digits, e.g. `2024-05-01T12:34:56.123456789Z`.
//!
//! json, like docker's json-file driver, one object per line:
//!     `{"log":"<text>","stream":"stdout","time":"<timestamp>"}\n`
//! where <text> keeps the line's newline; a partial line is one whose text does not end
//! in `\n`. Invalid UTF-8 becomes U+FFFD.
//!
//! With a size limit, the log is renamed to `<log>.1` (replacing the previous one) when
//! the next entry would take it past the limit, and a new log is started: the newest
//! output is always kept, and the two files together stay under about twice the limit.

use crate::sys::{self, Fd};
use alloc::ffi::CString;
use alloc::vec::Vec;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

const FLUSH_AT: usize = 32 * 1024;

pub struct Log {
    fd: Fd,
    path: CString,
    old: CString,
    json: bool,
    max: u64,
    size: u64,
    buf: Vec<u8>,
}

fn open_log(path: &CString, trunc: bool) -> sys::Result<(Fd, u64)> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | if trunc { libc::O_TRUNC } else { 0 };
    let fd = sys::open(path, flags, 0o600)?;
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    sys::cvt(unsafe { libc::fstat(fd.raw(), &mut st) })?;
    Ok((fd, st.st_size as u64))
}

impl Log {
    pub fn open(path: CString, json: bool, max: u64) -> sys::Result<Log> {
        let (fd, size) = open_log(&path, false)?;
        let old = sys::with_suffix(&path, ".1");
        Ok(Log { fd, path, old, json, max, size, buf: Vec::with_capacity(FLUSH_AT + 8192 * 2) })
    }

    /// Log a chunk of output read from `stream`.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let ts = timestamp();
        let mut rest = data;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.entry(stream, &rest[..i], true, &ts);
                    rest = &rest[i + 1..];
                }
                None => {
                    self.entry(stream, rest, false, &ts);
                    rest = &[];
                }
            }
        }
        self.flush();
    }

    fn entry(&mut self, stream: u8, line: &[u8], full: bool, ts: &[u8; 30]) {
        let start = self.buf.len();
        let name: &[u8] = if stream == STDERR { b"stderr" } else { b"stdout" };
        let b = &mut self.buf;
        if self.json {
            b.extend_from_slice(b"{\"log\":\"");
            json_escape(b, line);
            if full {
                b.extend_from_slice(b"\\n");
            }
            b.extend_from_slice(b"\",\"stream\":\"");
            b.extend_from_slice(name);
            b.extend_from_slice(b"\",\"time\":\"");
            b.extend_from_slice(ts);
            b.extend_from_slice(b"\"}\n");
        } else {
            b.extend_from_slice(ts);
            b.push(b' ');
            b.extend_from_slice(name);
            b.extend_from_slice(if full { b" F " } else { b" P " });
            b.extend_from_slice(line);
            b.push(b'\n');
        }
        if self.max > 0 && self.size + self.buf.len() as u64 > self.max && self.size + start as u64 > 0 {
            // The entry does not fit: finish the current file with what precedes it,
            // start a new one, and carry the entry over.
            let _ = sys::write_all(self.fd.raw(), &self.buf[..start]);
            self.rotate();
            self.buf.drain(..start);
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn rotate(&mut self) {
        let renamed = unsafe { libc::rename(self.path.as_ptr(), self.old.as_ptr()) } == 0;
        match open_log(&self.path, true) {
            Ok((fd, size)) => {
                self.fd = fd;
                self.size = size;
            }
            Err(_) => {
                if !renamed {
                    // Cannot start anew: at least keep the file bounded.
                    unsafe { libc::ftruncate(self.fd.raw(), 0) };
                }
                self.size = 0;
            }
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            // A full disk loses log output, never the container.
            let _ = sys::write_all(self.fd.raw(), &self.buf);
            self.size += self.buf.len() as u64;
            self.buf.clear();
        }
    }
}

fn json_escape(out: &mut Vec<u8>, line: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in line.utf8_chunks() {
        for &c in chunk.valid().as_bytes() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// Now, as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn timestamp() -> [u8; 30] {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    #[allow(clippy::unnecessary_cast)] // time_t is not i64 everywhere
    format_time(ts.tv_sec as i64, ts.tv_nsec as u32)
}

pub fn format_time(secs: i64, nanos: u32) -> [u8; 30] {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let mut o = *b"0000-00-00T00:00:00.000000000Z";
    fn put(o: &mut [u8], mut v: u64) {
        for i in (0..o.len()).rev() {
            o[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    put(&mut o[0..4], y.clamp(0, 9999) as u64);
    put(&mut o[5..7], m as u64);
    put(&mut o[8..10], d as u64);
    put(&mut o[11..13], (sod / 3600) as u64);
    put(&mut o[14..16], (sod / 60 % 60) as u64);
    put(&mut o[17..19], (sod % 60) as u64);
    put(&mut o[20..29], nanos as u64);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(&format_time(0, 0), b"1970-01-01T00:00:00.000000000Z");
        assert_eq!(&format_time(951782400 + 86399, 5), b"2000-02-29T23:59:59.000000005Z");
        assert_eq!(&format_time(1700000000, 123456789), b"2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn escapes_json() {
        let mut v = Vec::new();
        json_escape(&mut v, b"a\"b\\c\x01\t\xffd\xc3\xa9");
        assert_eq!(String::from_utf8(v).unwrap(), "a\\\"b\\\\c\\u0001\\t\\ufffdd\u{e9}");
    }
}
