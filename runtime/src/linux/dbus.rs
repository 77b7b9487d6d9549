//! A small synchronous D-Bus client: enough of the protocol for the systemd cgroup driver
//! to call `org.freedesktop.systemd1.Manager` and wait for its `JobRemoved` signal.
//!
//! Why not zbus: berth is a static binary that starts afresh for every command, and zbus
//! would bring an async executor and dozens of crates for a dozen message shapes.
//!
//! What it does: EXTERNAL authentication over a unix socket, the whole type system but
//! fds (written little-endian, read in either byte order), method calls with a timeout,
//! signals queued while a call waits for its reply. What it doesn't: fd passing ('h'),
//! other transports or auth mechanisms, answering method calls sent to us (dropped).
//! Everything read from the peer is bounds-checked: bad input is an `Err`, never a panic.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

/// How long `connect` waits for the auth and `Hello`, and `add_match` for its reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);
const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";
const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
// Limits from the specification; they also bound what a hostile peer can make us allocate.
const MAX_MESSAGE: usize = 1 << 27;
const MAX_ARRAY: usize = 1 << 26;
const MAX_DEPTH: u32 = 64;
/// Signals kept for `wait_signal`; past this the oldest is dropped, so that a chatty bus
/// (systemd after `Subscribe`) cannot grow the queue without bound.
const MAX_QUEUED: usize = 1024;
const NO_REPLY_EXPECTED: u8 = 1;

/// A value of the D-Bus type system.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// Element signature (e.g. "(sv)", "u", "y", "{sv}") and the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A dict entry inside an array "{kv}".
    DictEntry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// A systemd property: the struct `(sv)` of a name and a variant.
    pub fn prop(name: &str, v: Value) -> Value {
        Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
    }

    /// The type code: the signature's first character.
    fn code(&self) -> u8 {
        match self {
            Value::Byte(_) => b'y',
            Value::Bool(_) => b'b',
            Value::I16(_) => b'n',
            Value::U16(_) => b'q',
            Value::I32(_) => b'i',
            Value::U32(_) => b'u',
            Value::I64(_) => b'x',
            Value::U64(_) => b't',
            Value::Double(_) => b'd',
            Value::Str(_) => b's',
            Value::ObjectPath(_) => b'o',
            Value::Signature(_) => b'g',
            Value::Array(..) => b'a',
            Value::Struct(_) => b'(',
            Value::DictEntry(..) => b'{',
            Value::Variant(_) => b'v',
        }
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(f) => format!("({})", f.iter().map(Value::signature).collect::<String>()),
            Value::DictEntry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            v => char::from(v.code()).to_string(),
        }
    }

    /// The value inside any number of variants. The accessors below look through variants
    /// too, so that `Properties.Get`'s `v` reads as its content.
    pub fn peel(&self) -> &Value {
        match self {
            Value::Variant(v) => v.peel(),
            v => v,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self.peel() {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.peel() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// Any unsigned integer, widened.
    pub fn as_u64(&self) -> Option<u64> {
        match *self.peel() {
            Value::Byte(n) => Some(n.into()),
            Value::U16(n) => Some(n.into()),
            Value::U32(n) => Some(n.into()),
            Value::U64(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self.peel() {
            Value::Array(_, items) => Some(items),
            _ => None,
        }
    }
}

/// An error reply from the peer: its D-Bus error name and its message.
#[derive(Debug, Clone)]
pub struct DbusError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for DbusError {}

impl From<DbusError> for Error {
    fn from(e: DbusError) -> Self {
        Error::new(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageType {
    #[default]
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// A whole message. `signature` is what was read; on sending it is computed from `body`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub kind: MessageType,
    pub flags: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub signature: String,
    pub body: Vec<Value>,
}

impl Message {
    fn new(kind: MessageType) -> Message {
        Message { kind, ..Default::default() }
    }

    /// Whether this is the signal `iface.member`.
    pub fn is_signal(&self, iface: &str, member: &str) -> bool {
        self.kind == MessageType::Signal && self.interface.as_deref() == Some(iface) && self.member.as_deref() == Some(member)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let sig: String = self.body.iter().map(Value::signature).collect();
        check_sig(&sig)?;
        let mut body = Vec::new();
        for v in &self.body {
            put(&mut body, v)?;
        }
        let s = |o: &Option<String>| o.clone().map(Value::Str);
        let fields = [
            (1, self.path.clone().map(Value::ObjectPath)),
            (2, s(&self.interface)),
            (3, s(&self.member)),
            (4, s(&self.error_name)),
            (5, self.reply_serial.map(Value::U32)),
            (6, s(&self.destination)),
            (7, s(&self.sender)),
            (8, (!sig.is_empty()).then(|| Value::Signature(sig.clone()))),
        ];
        let fields = fields.into_iter().filter_map(|(code, v)| Some(Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v?))])));
        if body.len() > MAX_MESSAGE {
            crate::bail!("D-Bus message body too long");
        }
        let mut msg = Vec::new();
        let header = [
            Value::Byte(b'l'),
            Value::Byte(self.kind as u8),
            Value::Byte(self.flags),
            Value::Byte(1),
            Value::U32(body.len() as u32),
            Value::U32(self.serial),
            Value::Array("(yv)".into(), fields.collect()),
        ];
        for v in &header {
            put(&mut msg, v)?;
        }
        pad(&mut msg, 8);
        msg.extend_from_slice(&body);
        if msg.len() > MAX_MESSAGE {
            crate::bail!("D-Bus message too long");
        }
        Ok(msg)
    }

    /// Decodes exactly one whole message.
    fn decode(buf: &[u8]) -> Result<Message> {
        if frame_len(buf)? != Some(buf.len()) {
            crate::bail!("D-Bus message length does not match its header");
        }
        // frame_len saw the 16 fixed bytes; the first four are single bytes.
        let (kind, flags, version) = (buf[1], buf[2], buf[3]);
        let big = buf[0] == b'B';
        let mut d = Dec { buf, pos: 4, big };
        let kind = match kind {
            1 => MessageType::MethodCall,
            2 => MessageType::MethodReturn,
            3 => MessageType::Error,
            4 => MessageType::Signal,
            _ => crate::bail!("D-Bus message of unknown type {kind}"),
        };
        if version != 1 {
            crate::bail!("D-Bus protocol version {version} is not supported");
        }
        let mut m = Message::new(kind);
        m.flags = flags;
        let body_len = d.u32()? as usize;
        m.serial = d.u32()?;
        if m.serial == 0 {
            crate::bail!("D-Bus message with serial 0");
        }
        let Value::Array(_, fields) = d.value(b"a(yv)", 0)? else {
            crate::bail!("D-Bus header fields are not an array");
        };
        for f in fields {
            let Value::Struct(f) = f else { crate::bail!("bad D-Bus header field") };
            let [Value::Byte(code), Value::Variant(v)] = f.as_slice() else {
                crate::bail!("bad D-Bus header field");
            };
            let slot = match (*code, v.as_ref()) {
                (1, Value::ObjectPath(_)) => &mut m.path,
                (2, Value::Str(_)) => &mut m.interface,
                (3, Value::Str(_)) => &mut m.member,
                (4, Value::Str(_)) => &mut m.error_name,
                (6, Value::Str(_)) => &mut m.destination,
                (7, Value::Str(_)) => &mut m.sender,
                (8, Value::Signature(s)) => {
                    m.signature = s.clone();
                    continue;
                }
                (5, Value::U32(n)) => {
                    m.reply_serial = Some(*n);
                    continue;
                }
                // We never negotiate fd passing, so a peer must not send any.
                (9, _) => crate::bail!("D-Bus message carries unix fds"),
                (1..=8, _) => crate::bail!("D-Bus header field {code} has the wrong type"),
                _ => continue, // unknown fields are ignored, as the specification asks
            };
            *slot = v.as_str().map(String::from);
        }
        let missing = match kind {
            MessageType::MethodCall => m.path.is_none() || m.member.is_none(),
            MessageType::MethodReturn => m.reply_serial.is_none(),
            MessageType::Error => m.reply_serial.is_none() || m.error_name.is_none(),
            MessageType::Signal => m.path.is_none() || m.interface.is_none() || m.member.is_none(),
        };
        if missing {
            crate::bail!("D-Bus {kind:?} message lacks a required header field");
        }
        d.align(8)?;
        if buf.len() - d.pos != body_len {
            crate::bail!("D-Bus message body length does not match");
        }
        let sig = m.signature.clone();
        let mut rest = sig.as_bytes();
        while !rest.is_empty() {
            let n = first_type(rest, 0)?;
            m.body.push(d.value(&rest[..n], 0)?);
            rest = &rest[n..];
        }
        if d.pos != buf.len() {
            crate::bail!("D-Bus message body is longer than its signature");
        }
        Ok(m)
    }
}

/// The length of the message at the start of `buf`, once its fixed 16 bytes are there.
fn frame_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let word = |i: usize| {
        let b = [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        if buf[0] == b'B' {
            u32::from_be_bytes(b) as usize
        } else {
            u32::from_le_bytes(b) as usize
        }
    };
    if buf[0] != b'l' && buf[0] != b'B' {
        crate::bail!("D-Bus message with a bad endianness byte {:#x}", buf[0]);
    }
    let (body, fields) = (word(4), word(12));
    if body > MAX_MESSAGE || fields > MAX_ARRAY {
        crate::bail!("D-Bus message too long");
    }
    let len = (16 + fields).next_multiple_of(8) + body;
    if len > MAX_MESSAGE {
        crate::bail!("D-Bus message too long");
    }
    Ok(Some(len))
}

fn is_basic(c: u8) -> bool {
    b"ybnqiuxtdsog".contains(&c)
}

fn align_of(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// The length of the single complete type `sig` starts with.
fn first_type(sig: &[u8], depth: u32) -> Result<usize> {
    if depth > MAX_DEPTH {
        crate::bail!("D-Bus signature nested too deeply");
    }
    match sig.first() {
        Some(&c) if is_basic(c) || c == b'v' => Ok(1),
        Some(b'a') if sig.get(1) == Some(&b'{') => {
            // A dict entry: a basic key, one value, and only as an array's element.
            if !sig.get(2).is_some_and(|&c| is_basic(c)) {
                crate::bail!("D-Bus dict entry with a non-basic key");
            }
            let n = first_type(&sig[3..], depth + 1)?;
            if sig.get(3 + n) != Some(&b'}') {
                crate::bail!("D-Bus dict entry not closed");
            }
            Ok(4 + n)
        }
        Some(b'a') => Ok(1 + first_type(&sig[1..], depth + 1)?),
        Some(b'(') => {
            let mut i = 1;
            while sig.get(i) != Some(&b')') {
                i += first_type(&sig[i..], depth + 1)?;
            }
            if i == 1 {
                crate::bail!("D-Bus empty struct");
            }
            Ok(i + 1)
        }
        _ => crate::bail!("bad D-Bus signature {:?}", String::from_utf8_lossy(sig)),
    }
}

/// Checks a signature of any number of complete types.
fn check_sig(sig: &str) -> Result<()> {
    if sig.len() > 255 {
        crate::bail!("D-Bus signature too long");
    }
    let mut rest = sig.as_bytes();
    while !rest.is_empty() {
        rest = &rest[first_type(rest, 0)?..];
    }
    Ok(())
}

fn check_single(sig: &str) -> Result<()> {
    if sig.len() > 255 || sig.is_empty() || first_type(sig.as_bytes(), 0)? != sig.len() {
        crate::bail!("D-Bus signature {sig:?} is not one complete type");
    }
    Ok(())
}

fn valid_path(p: &str) -> bool {
    p == "/" || (p.starts_with('/') && p[1..].split('/').all(|seg| !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')))
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    buf.resize(buf.len().next_multiple_of(align), 0);
}

/// Appends `v`, little-endian, aligned as if `buf` started at the message's start
/// (the body starts 8-aligned, so it can be marshalled on its own).
fn put(buf: &mut Vec<u8>, v: &Value) -> Result<()> {
    pad(buf, align_of(v.code()));
    match v {
        Value::Byte(n) => buf.push(*n),
        Value::Bool(b) => buf.extend_from_slice(&u32::from(*b).to_le_bytes()),
        Value::I16(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U16(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::Double(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::Str(s) | Value::ObjectPath(s) => {
            if s.contains('\0') || (matches!(v, Value::ObjectPath(_)) && !valid_path(s)) {
                crate::bail!("bad D-Bus string or object path {s:?}");
            }
            let len = u32::try_from(s.len()).map_err(|_| Error::new("D-Bus string too long"))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Signature(s) => {
            check_sig(s)?;
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            // Checked with its 'a': a dict entry is a valid element and nothing else.
            check_single(&format!("a{elem}"))?;
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            // The padding to the first element is there even when there is none,
            // and is not counted in the length.
            pad(buf, align_of(elem.as_bytes()[0]));
            let start = buf.len();
            for it in items {
                if it.signature() != *elem {
                    crate::bail!("D-Bus array of {elem} holds a {}", it.signature());
                }
                put(buf, it)?;
            }
            if buf.len() - start > MAX_ARRAY {
                crate::bail!("D-Bus array too long");
            }
            let len = (buf.len() - start) as u32;
            buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(fields) => {
            for f in fields {
                put(buf, f)?;
            }
        }
        Value::DictEntry(k, v) => {
            put(buf, k)?;
            put(buf, v)?;
        }
        Value::Variant(inner) => {
            let sig = inner.signature();
            check_single(&sig)?;
            put(buf, &Value::Signature(sig))?;
            put(buf, inner)?;
        }
    }
    Ok(())
}

/// A reader over one whole message; positions are from the message's start.
struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| Error::new("D-Bus message truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, align: usize) -> Result<()> {
        let padding = self.take(self.pos.next_multiple_of(align) - self.pos)?;
        if padding.iter().any(|&b| b != 0) {
            crate::bail!("D-Bus message with non-zero padding");
        }
        Ok(())
    }

    /// N bytes aligned to N (true of every fixed-size type), in little-endian order.
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut b = [0; N];
        b.copy_from_slice(self.take(N)?);
        if self.big {
            b.reverse();
        }
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    /// `n` bytes of UTF-8 without NUL, then a NUL.
    fn string(&mut self, n: usize) -> Result<String> {
        let s = self.take(n)?;
        if self.take(1)? != [0] || s.contains(&0) {
            crate::bail!("D-Bus string not NUL-terminated");
        }
        String::from_utf8(s.to_vec()).map_err(|_| Error::new("D-Bus string not UTF-8"))
    }

    fn signature(&mut self) -> Result<String> {
        let [n] = self.fixed::<1>()?;
        let s = self.string(n.into())?;
        check_sig(&s)?;
        Ok(s)
    }

    /// One value of the single complete type `sig` (already checked by `first_type`).
    fn value(&mut self, sig: &[u8], depth: u32) -> Result<Value> {
        if depth > MAX_DEPTH {
            crate::bail!("D-Bus value nested too deeply");
        }
        Ok(match sig[0] {
            b'y' => Value::Byte(self.fixed::<1>()?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => crate::bail!("D-Bus boolean {n}"),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.fixed()?)),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.string(n)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else if valid_path(&s) {
                    Value::ObjectPath(s)
                } else {
                    crate::bail!("bad D-Bus object path {s:?}");
                }
            }
            b'g' => Value::Signature(self.signature()?),
            b'v' => {
                let s = self.signature()?;
                check_single(&s)?;
                Value::Variant(Box::new(self.value(s.as_bytes(), depth + 1)?))
            }
            b'a' => {
                let n = self.u32()? as usize;
                if n > MAX_ARRAY {
                    crate::bail!("D-Bus array too long");
                }
                let elem = &sig[1..];
                self.align(align_of(elem[0]))?;
                let end = self.pos + n;
                let mut items = Vec::new();
                // Every element takes at least one byte, so this ends.
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.pos != end {
                    crate::bail!("D-Bus array element overruns the array");
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' => {
                self.align(8)?;
                let (mut fields, mut rest) = (Vec::new(), &sig[1..sig.len() - 1]);
                while !rest.is_empty() {
                    let n = first_type(rest, depth + 1)?;
                    fields.push(self.value(&rest[..n], depth + 1)?);
                    rest = &rest[n..];
                }
                Value::Struct(fields)
            }
            b'{' => {
                self.align(8)?;
                let k = self.value(&sig[1..2], depth + 1)?;
                let v = self.value(&sig[2..sig.len() - 1], depth + 1)?;
                Value::DictEntry(Box::new(k), Box::new(v))
            }
            c => crate::bail!("D-Bus type {:?} is not supported", char::from(c)),
        })
    }
}

/// Where an address entry points.
#[derive(Debug, PartialEq)]
enum Target {
    Path(Vec<u8>),
    Abstract(Vec<u8>),
}

/// The usable entries of a ';'-separated address list: `unix:` with `path=` or `abstract=`.
fn parse_address(address: &str) -> Vec<Target> {
    let unescape = |v: &str| {
        let (mut out, b) = (Vec::new(), v.as_bytes());
        let mut i = 0;
        while i < b.len() {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(c) if b[i] == b'%' => {
                    out.push(c);
                    i += 3;
                }
                _ => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        out
    };
    let entries = address.split(';').filter_map(|e| e.strip_prefix("unix:"));
    let keys = entries.flat_map(|kv| {
        kv.split(',').find_map(|kv| match kv.split_once('=') {
            Some(("path", v)) => Some(Target::Path(unescape(v))),
            Some(("abstract", v)) => Some(Target::Abstract(unescape(v))),
            _ => None,
        })
    });
    keys.collect()
}

/// A connection to a bus or a direct peer.
pub struct Conn {
    sock: UnixStream,
    /// Bytes read but not yet consumed: messages may span reads, and a read may hold several.
    rbuf: Vec<u8>,
    serial: u32,
    /// Signals that arrived while we waited for something else, oldest first.
    queue: VecDeque<Message>,
    unique_name: Option<String>,
    bus: bool,
}

impl Conn {
    /// The system bus: $DBUS_SYSTEM_BUS_ADDRESS, else unix:path=/run/dbus/system_bus_socket.
    pub fn system() -> Result<Conn> {
        let env = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_default();
        Conn::connect(if env.is_empty() { SYSTEM_BUS } else { &env }, true)
    }

    /// A bus or peer address ("unix:path=/x", "unix:abstract=x"; the first entry of a ';'
    /// list that connects). `hello`: send org.freedesktop.DBus.Hello after auth (true for a
    /// bus; false for a direct peer such as systemd's private socket /run/systemd/private).
    pub fn connect(address: &str, hello: bool) -> Result<Conn> {
        let mut last = Error::new(format!("no usable unix address in {address:?}"));
        let mut sock = None;
        for t in parse_address(address) {
            let r = match &t {
                Target::Path(p) => UnixStream::connect(OsStr::from_bytes(p)),
                Target::Abstract(n) => SocketAddr::from_abstract_name(n).and_then(|a| UnixStream::connect_addr(&a)),
            };
            match r {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e.into(),
            }
        }
        let sock = sock.ok_or(last).with_ctx(|| format!("connect to D-Bus at {address}"))?;
        let mut c = Conn::from_stream(sock, hello);
        c.auth().with_ctx(|| format!("authenticate to D-Bus at {address}"))?;
        if hello {
            let r = c.call(BUS, BUS_PATH, BUS, "Hello", &[], DEFAULT_TIMEOUT)??;
            let name = r.first().and_then(Value::as_str);
            let name = name.ok_or_else(|| Error::new("D-Bus Hello: no name in the reply"))?;
            c.unique_name = Some(name.to_string());
        }
        Ok(c)
    }

    fn from_stream(sock: UnixStream, bus: bool) -> Conn {
        let (rbuf, queue) = (Vec::new(), VecDeque::new());
        Conn { sock, rbuf, serial: 0, queue, unique_name: None, bus }
    }

    /// The unique name the bus gave us (after Hello).
    pub fn unique_name(&self) -> Option<&str> {
        self.unique_name.as_deref()
    }

    /// A method call; waits (up to `timeout`) for its reply. Outer Err: transport/protocol;
    /// inner Err: the peer's error reply. Signals that arrive meanwhile are queued for
    /// wait_signal. An empty `dest` or `iface` leaves that header out (a direct peer).
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
        timeout: Duration,
    ) -> Result<std::result::Result<Vec<Value>, DbusError>> {
        let deadline = Instant::now() + timeout;
        let what = || format!("D-Bus call {iface}.{member} to {dest}");
        let mut m = Message::new(MessageType::MethodCall);
        m.destination = (!dest.is_empty()).then(|| dest.into());
        m.path = Some(path.into());
        m.interface = (!iface.is_empty()).then(|| iface.into());
        m.member = Some(member.into());
        m.body = args.to_vec();
        let serial = self.send(m, deadline).with_ctx(what)?;
        loop {
            let Some(m) = self.recv(deadline).with_ctx(what)? else {
                crate::bail!("{}: no reply within {timeout:?}", what());
            };
            match m.kind {
                MessageType::MethodReturn if m.reply_serial == Some(serial) => return Ok(Ok(m.body)),
                MessageType::Error if m.reply_serial == Some(serial) => {
                    let message = m.body.first().and_then(Value::as_str).unwrap_or("").into();
                    let name = m.error_name.unwrap_or_default();
                    return Ok(Err(DbusError { name, message }));
                }
                MessageType::Signal => self.enqueue(m),
                // A late reply to a call that timed out, or a call to us: dropped.
                _ => {}
            }
        }
    }

    /// org.freedesktop.DBus.AddMatch with a match rule. A no-op on a direct connection
    /// (made with `hello` false): there the peer sends its signals unasked (systemd: to
    /// those that called its Subscribe).
    pub fn add_match(&mut self, rule: &str) -> Result<()> {
        if !self.bus {
            return Ok(());
        }
        let args = [Value::Str(rule.into())];
        let r = self.call(BUS, BUS_PATH, BUS, "AddMatch", &args, DEFAULT_TIMEOUT)?;
        r.map(drop).with_ctx(|| format!("D-Bus AddMatch {rule}"))
    }

    /// The next signal (queued first, then from the socket) for which `pred` is true, or
    /// None on timeout. Signals `pred` rejects stay queued, in order, for a later wait (up to
    /// MAX_QUEUED, then the oldest are dropped).
    pub fn wait_signal(&mut self, timeout: Duration, mut pred: impl FnMut(&Message) -> bool) -> Result<Option<Message>> {
        if let Some(i) = self.queue.iter().position(&mut pred) {
            return Ok(self.queue.remove(i));
        }
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.recv(deadline).ctx("wait for a D-Bus signal")? {
            if m.kind == MessageType::Signal {
                if pred(&m) {
                    return Ok(Some(m));
                }
                self.enqueue(m);
            }
        }
        Ok(None)
    }

    /// Emits a signal (used by the tests to play systemd's part).
    pub fn emit_signal(&mut self, path: &str, iface: &str, member: &str, args: &[Value]) -> Result<()> {
        let mut m = Message::new(MessageType::Signal);
        m.flags = NO_REPLY_EXPECTED;
        m.path = Some(path.into());
        m.interface = Some(iface.into());
        m.member = Some(member.into());
        m.body = args.to_vec();
        self.send(m, Instant::now() + DEFAULT_TIMEOUT).map(drop).with_ctx(|| format!("emit D-Bus signal {iface}.{member}"))
    }

    fn enqueue(&mut self, m: Message) {
        if self.queue.len() >= MAX_QUEUED {
            self.queue.pop_front();
        }
        self.queue.push_back(m);
    }

    /// Sends `m` with the next serial, which it returns.
    fn send(&mut self, mut m: Message, deadline: Instant) -> Result<u32> {
        self.serial = self.serial.checked_add(1).unwrap_or(1); // 0 is not a serial
        m.serial = self.serial;
        self.write_all(&m.encode()?, deadline)?;
        Ok(m.serial)
    }

    fn write_all(&mut self, mut buf: &[u8], deadline: Instant) -> Result<()> {
        // MSG_NOSIGNAL: berth does not ignore SIGPIPE, and a peer that hangs up must not kill it.
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        while !buf.is_empty() {
            match send(self.sock.as_raw_fd(), buf, flags) {
                Ok(n) => buf = &buf[n..],
                Err(Errno::EAGAIN) => {
                    if !self.ready(PollFlags::POLLOUT, deadline)? {
                        crate::bail!("timed out writing to D-Bus");
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e).ctx("write to D-Bus"),
            }
        }
        Ok(())
    }

    /// Waits until the socket is ready for `events`; false if `deadline` passes first.
    fn ready(&self, events: PollFlags, deadline: Instant) -> Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Rounded up, so that less than a millisecond left does not spin.
            let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(self.sock.as_fd(), events)];
            match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e).ctx("poll the D-Bus socket"),
            }
        }
    }

    /// Reads what the socket has; false if `deadline` passes first.
    fn fill(&mut self, deadline: Instant) -> Result<bool> {
        if !self.ready(PollFlags::POLLIN, deadline)? {
            return Ok(false);
        }
        let old = self.rbuf.len();
        self.rbuf.resize(old + 64 * 1024, 0);
        let r = (&self.sock).read(&mut self.rbuf[old..]);
        self.rbuf.truncate(old + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => crate::bail!("D-Bus connection closed by the peer"),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e).ctx("read from D-Bus"),
        }
    }

    /// The next message from the socket, or None if `deadline` passes first.
    fn recv(&mut self, deadline: Instant) -> Result<Option<Message>> {
        loop {
            if let Some(len) = frame_len(&self.rbuf)?.filter(|&len| self.rbuf.len() >= len) {
                // Taken out before decoding: a bad message is one error, not a stuck stream.
                let raw: Vec<u8> = self.rbuf.drain(..len).collect();
                if (1..=4).contains(&raw[1]) {
                    return Message::decode(&raw).map(Some);
                }
                continue; // messages of unknown types are ignored, as the specification asks
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// EXTERNAL auth with our uid; the only mechanism systemd and dbus-daemon need here.
    fn auth(&mut self) -> Result<()> {
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes(), deadline)?;
        let line = loop {
            if let Some(i) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.rbuf[..i]).into_owned();
                self.rbuf.drain(..i + 2);
                break line;
            }
            if self.rbuf.len() > 4096 {
                crate::bail!("D-Bus auth reply too long");
            }
            if !self.fill(deadline)? {
                crate::bail!("timed out waiting for the D-Bus auth reply");
            }
        };
        if !line.starts_with("OK ") {
            crate::bail!("D-Bus peer refused EXTERNAL auth: {line:?}");
        }
        self.write_all(b"BEGIN\r\n", deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    const T: Duration = Duration::from_secs(10);
    const IFACE: &str = "org.berth.Test";
    const OBJ: &str = "/org/berth/Test";
    const RULE: &str = "type='signal',interface='org.berth.Test'";
    static N: AtomicU32 = AtomicU32::new(0);

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }
    fn arr(elem: &str, items: Vec<Value>) -> Value {
        Value::Array(elem.into(), items)
    }
    fn var(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    fn call_msg(body: Vec<Value>) -> Message {
        let mut m = Message::new(MessageType::MethodCall);
        m.serial = 9;
        m.destination = Some("org.freedesktop.systemd1".into());
        m.path = Some("/org/freedesktop/systemd1".into());
        m.interface = Some("org.freedesktop.systemd1.Manager".into());
        m.member = Some("StartTransientUnit".into());
        m.body = body;
        m
    }

    fn signal_msg(member: &str, body: Vec<Value>) -> Message {
        let mut m = Message::new(MessageType::Signal);
        (m.serial, m.flags, m.body) = (3, NO_REPLY_EXPECTED, body);
        (m.path, m.interface, m.member) = (Some(OBJ.into()), Some(IFACE.into()), Some(member.into()));
        m
    }

    /// Encodes and decodes `m`, which must come back the same, its signature filled in.
    fn roundtrip(m: &Message) -> Message {
        let back = Message::decode(&m.encode().unwrap()).unwrap();
        let mut want = m.clone();
        want.signature = m.body.iter().map(Value::signature).collect();
        assert_eq!(back, want);
        back
    }

    fn marshal(vals: &[Value]) -> Vec<u8> {
        let mut buf = Vec::new();
        vals.iter().for_each(|v| put(&mut buf, v).unwrap());
        buf
    }

    fn transient_unit_args() -> Vec<Value> {
        let bw = Value::Struct(vec![s("/dev/sda"), Value::U64(1 << 20)]);
        let props = vec![
            Value::prop("Description", s("berth container x")),
            Value::prop("Delegate", Value::Bool(true)),
            Value::prop("MemoryMax", Value::U64(u64::MAX)),
            Value::prop("PIDs", arr("u", vec![Value::U32(1), Value::U32(4242)])),
            Value::prop("AllowedCPUs", arr("y", vec![Value::Byte(0b1010)])),
            Value::prop("IOReadBandwidthMax", arr("(st)", vec![bw])),
            Value::prop("Empty", arr("(st)", vec![])),
        ];
        let aux = arr("(sa(sv))", vec![]);
        vec![s("berth-x.scope"), s("replace"), arr("(sv)", props), aux]
    }

    #[test]
    fn start_transient_unit_arguments_round_trip() {
        let back = roundtrip(&call_msg(transient_unit_args()));
        assert_eq!(back.signature, "ssa(sv)a(sa(sv))");
        let Value::Struct(f) = &back.body[2].as_array().unwrap()[3] else { panic!() };
        assert_eq!(f[1].as_array().unwrap(), [Value::U32(1), Value::U32(4242)]);
        assert_eq!(var(var(Value::U32(7))).as_u64(), Some(7));
        assert_eq!(var(Value::ObjectPath("/a".into())).as_str(), Some("/a"));
    }

    #[test]
    fn every_type_and_nesting_round_trips() {
        let entry = Value::DictEntry(Box::new(s("k")), Box::new(var(Value::I16(-2))));
        let nested = Value::Struct(vec![Value::Byte(1), Value::Struct(vec![Value::U64(2)])]);
        let lists = arr("as", vec![arr("s", vec![s("a"), s("")]), arr("s", vec![])]);
        let body = vec![
            Value::Byte(255),
            Value::Bool(false),
            Value::I16(i16::MIN),
            Value::U16(u16::MAX),
            Value::I32(-1),
            Value::U32(u32::MAX),
            Value::I64(i64::MIN),
            Value::U64(u64::MAX),
            Value::Double(-1.5e300),
            s("ünïcode"),
            Value::ObjectPath("/".into()),
            Value::ObjectPath("/org/x_1/Y".into()),
            Value::Signature("a{sv}(ii)".into()),
            Value::Signature(String::new()),
            arr("{sv}", vec![entry]),
            var(var(arr("y", vec![Value::Byte(1), Value::Byte(2)]))),
            nested,
            lists,
            arr("{ut}", vec![]),
        ];
        roundtrip(&call_msg(body));
        roundtrip(&signal_msg("JobRemoved", vec![Value::U32(7), Value::ObjectPath("/j/7".into())]));
        let mut err = Message::new(MessageType::Error);
        (err.serial, err.reply_serial, err.sender) = (2, Some(9), Some(":1.5".into()));
        (err.error_name, err.body) = (Some("org.x.Error.Failed".into()), vec![s("why")]);
        roundtrip(&err);
    }

    #[test]
    fn alignment_of_u64_after_a_byte_and_of_empty_arrays() {
        let le = 0x0102_0304_0506_0708u64.to_le_bytes();
        let want: Vec<u8> = [7, 0, 0, 0, 0, 0, 0, 0].into_iter().chain(le).collect();
        assert_eq!(marshal(&[Value::Byte(7), Value::U64(0x0102_0304_0506_0708)]), want);
        // An empty array of structs still pads to 8 after its length, uncounted.
        let empty = arr("(ii)", vec![]);
        assert_eq!(marshal(&[empty.clone(), Value::U32(5)]), [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(marshal(&[Value::Byte(1), empty.clone(), Value::Byte(2)]), [1, 0, 0, 0, 0, 0, 0, 0, 2]);
        // Both, inside whole messages whose header ends off an 8 boundary before padding.
        roundtrip(&call_msg(vec![Value::Byte(1), Value::U64(u64::MAX - 1)]));
        roundtrip(&call_msg(vec![empty, Value::U32(5), Value::Byte(3)]));
    }

    #[test]
    fn big_endian_message_decodes() {
        let mut b = vec![b'B', 2, 0, 1];
        b.extend(16u32.to_be_bytes()); // body length
        b.extend(7u32.to_be_bytes()); // serial
        b.extend(16u32.to_be_bytes()); // header fields' length
        b.extend([5, 1, b'u', 0]); // REPLY_SERIAL: u
        b.extend(42u32.to_be_bytes());
        b.extend([8, 1, b'g', 0, 2, b's', b'u', 0]); // SIGNATURE: g "su"
        b.extend(5u32.to_be_bytes()); // body: "hello" and a u32
        b.extend(b"hello\0\0\0");
        b.extend(0x0102_0304u32.to_be_bytes());
        let m = Message::decode(&b).unwrap();
        assert_eq!((m.kind, m.serial, m.reply_serial), (MessageType::MethodReturn, 7, Some(42)));
        assert_eq!(m.body, [s("hello"), Value::U32(0x0102_0304)]);
    }

    #[test]
    fn truncated_or_corrupted_input_is_an_error_not_a_panic() {
        let good = call_msg(transient_unit_args()).encode().unwrap();
        for n in 0..good.len() {
            assert!(Message::decode(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64; // xorshift: no crate for a few random numbers
        let mut rnd = move |below: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % below as u64) as usize
        };
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..1 + rnd(3) {
                let i = rnd(b.len());
                b[i] = rnd(256) as u8;
            }
            let cut = if rnd(4) == 0 { rnd(b.len()) } else { b.len() };
            let _ = frame_len(&b[..cut]);
            let _ = Message::decode(&b[..cut]);
        }
        let corrupt = |body: Vec<Value>, from_end: usize, byte: u8| {
            let mut b = call_msg(body).encode().unwrap();
            let i = b.len() - from_end;
            b[i] = byte;
            Message::decode(&b).map(drop)
        };
        assert!(corrupt(vec![Value::Bool(true)], 4, 2).is_err(), "boolean 2");
        assert!(corrupt(vec![Value::Byte(1), Value::U32(2)], 6, 1).is_err(), "padding");
        assert!(corrupt(vec![s("ab")], 1, b'c').is_err(), "no NUL");
        assert!(corrupt(vec![arr("u", vec![Value::U32(1)])], 8, 8).is_err(), "array overrun");
        let deep = (0..100).fold(Value::U32(1), |v, _| var(v));
        assert!(Message::decode(&call_msg(vec![deep]).encode().unwrap()).is_err());
        let bad_args = [
            Value::Struct(vec![]),
            arr("u", vec![s("x")]),
            arr("{vs}", vec![]),
            arr("(s", vec![]),
            Value::ObjectPath("no/slash".into()),
            Value::ObjectPath("/trailing/".into()),
            s("nul\0"),
            Value::Struct(vec![Value::DictEntry(Box::new(s("k")), Box::new(s("v")))]),
        ];
        for v in bad_args {
            assert!(call_msg(vec![v.clone()]).encode().is_err(), "{v:?}");
        }
    }

    #[test]
    fn addresses_parse_with_escapes_and_skip_unusable_entries() {
        let a = "tcp:host=x,port=1;unix:guid=1,path=/run/a%20b;unix:runtime=yes;unix:abstract=%2fx";
        let want = [Target::Path(b"/run/a b".to_vec()), Target::Abstract(b"/x".to_vec())];
        assert_eq!(parse_address(a), want);
        assert!(Conn::connect("tcp:host=localhost,port=1", true).is_err());
    }

    /// A dbus-daemon of our own, killed by its pid and its directory removed when dropped,
    /// even when the test panics.
    struct Daemon {
        child: Option<Child>,
        dir: PathBuf,
        addr: String,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            if let Some(child) = &mut self.child {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Daemon {
        const BIN: &str = "/usr/bin/dbus-daemon";

        /// None only when the daemon is missing and BERTH_SKIP_DBUS_DAEMON_TESTS=1.
        fn start() -> Option<Daemon> {
            if !Path::new(Self::BIN).exists() {
                if std::env::var("BERTH_SKIP_DBUS_DAEMON_TESTS").as_deref() == Ok("1") {
                    eprintln!("{} is missing: skipped", Self::BIN);
                    return None;
                }
                panic!("{} is missing: install it (Debian: dbus-daemon), or set BERTH_SKIP_DBUS_DAEMON_TESTS=1", Self::BIN);
            }
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("berth-dbus-{}-{n}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            let mut d = Daemon { child: None, dir, addr: String::new() };
            let conf = d.dir.join("bus.conf");
            let config = format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                d.dir.display()
            );
            std::fs::write(&conf, config).unwrap();
            let mut cmd = Command::new(Self::BIN);
            cmd.args(["--nofork", "--nopidfile", "--nosyslog", "--print-address"]);
            cmd.arg(format!("--config-file={}", conf.display()));
            // Its stderr (a harmless complaint about the fd limit) goes to a file, shown on failure.
            let log = std::fs::File::create(d.dir.join("stderr")).unwrap();
            cmd.stdout(Stdio::piped()).stderr(log);
            let child = d.child.insert(cmd.spawn().unwrap());
            // It prints its address once it listens.
            let mut line = String::new();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            out.read_line(&mut line).unwrap();
            d.addr = line.trim().to_string();
            if !d.addr.starts_with("unix:") {
                let log = std::fs::read_to_string(d.dir.join("stderr")).unwrap_or_default();
                panic!("dbus-daemon printed {line:?}, and on stderr: {log}");
            }
            Some(d)
        }

        fn conn(&self) -> Conn {
            Conn::connect(&self.addr, true).unwrap()
        }
    }

    fn bus_call(c: &mut Conn, member: &str, args: &[Value]) -> Result<Vec<Value>, DbusError> {
        c.call(BUS, BUS_PATH, BUS, member, args, T).unwrap()
    }

    #[test]
    fn bus_hello_gives_a_unique_name() {
        let Some(d) = Daemon::start() else { return };
        let (a, b) = (d.conn(), d.conn());
        let name = a.unique_name().unwrap();
        assert!(name.starts_with(':'), "{name}");
        assert_ne!(a.unique_name(), b.unique_name());
    }

    #[test]
    fn bus_list_names_has_the_bus_and_us() {
        let Some(d) = Daemon::start() else { return };
        let mut c = d.conn();
        let r = bus_call(&mut c, "ListNames", &[]).unwrap();
        let names: Vec<&str> = r[0].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(names.contains(&BUS), "{names:?}");
        assert!(names.contains(&c.unique_name().unwrap()), "{names:?}");
    }

    #[test]
    fn bus_get_name_owner_of_a_missing_name_is_name_has_no_owner() {
        let Some(d) = Daemon::start() else { return };
        let mut c = d.conn();
        let e = bus_call(&mut c, "GetNameOwner", &[s("org.berth.Nobody")]).unwrap_err();
        assert_eq!(e.name, "org.freedesktop.DBus.Error.NameHasNoOwner", "{e}");
        assert!(!e.message.is_empty());
        let me = c.unique_name().unwrap().to_string();
        assert_eq!(bus_call(&mut c, "GetNameOwner", &[s(&me)]).unwrap(), [s(&me)]);
    }

    #[test]
    fn bus_call_to_an_unowned_name_is_service_unknown_not_a_hang() {
        let Some(d) = Daemon::start() else { return };
        let mut c = d.conn();
        let t0 = Instant::now();
        let r = c.call("org.berth.Nobody", OBJ, IFACE, "Ping", &[], T).unwrap();
        assert_eq!(r.unwrap_err().name, "org.freedesktop.DBus.Error.ServiceUnknown");
        assert!(t0.elapsed() < T / 2);
    }

    #[test]
    fn bus_signal_arrives_after_add_match_and_skipped_ones_stay_queued() {
        let Some(d) = Daemon::start() else { return };
        let (mut a, mut b) = (d.conn(), d.conn());
        a.add_match(RULE).unwrap();
        b.emit_signal(OBJ, IFACE, "Skipped", &[Value::U32(1)]).unwrap();
        b.emit_signal(OBJ, "org.berth.Other", "Unmatched", &[]).unwrap();
        b.emit_signal(OBJ, IFACE, "Wanted", &[s("hi"), Value::U32(2)]).unwrap();
        let m = a.wait_signal(T, |m| m.is_signal(IFACE, "Wanted")).unwrap();
        let m = m.expect("no signal");
        assert_eq!((m.sender.as_deref(), m.path.as_deref()), (b.unique_name(), Some(OBJ)));
        assert_eq!(m.body, [s("hi"), Value::U32(2)]);
        // The one the predicate passed over is still there for a later wait.
        let skipped = a.wait_signal(Duration::ZERO, |m| m.is_signal(IFACE, "Skipped")).unwrap();
        assert_eq!(skipped.expect("skipped signal lost").body, [Value::U32(1)]);
        // The one outside the match rule never reached us.
        let other = |m: &Message| m.interface.as_deref() == Some("org.berth.Other");
        assert!(a.wait_signal(Duration::from_millis(200), other).unwrap().is_none());
    }

    #[test]
    fn bus_reply_after_an_unrelated_signal_is_returned_and_the_signal_kept() {
        let Some(d) = Daemon::start() else { return };
        let (mut a, mut b) = (d.conn(), d.conn());
        a.add_match(RULE).unwrap();
        let b_name = b.unique_name().unwrap().to_string();
        // b plays a service that signals progress before it replies.
        let service = std::thread::spawn(move || {
            let deadline = Instant::now() + T;
            let call = loop {
                let m = b.recv(deadline).unwrap().expect("no call");
                if m.kind == MessageType::MethodCall {
                    break m;
                }
            };
            b.emit_signal(OBJ, IFACE, "Progress", &[Value::U32(50)]).unwrap();
            let mut r = Message::new(MessageType::MethodReturn);
            (r.destination, r.reply_serial, r.body) = (call.sender, Some(call.serial), call.body);
            b.send(r, deadline).unwrap();
        });
        let r = a.call(&b_name, OBJ, IFACE, "Echo", &[s("ping")], T).unwrap();
        service.join().unwrap();
        assert_eq!(r.unwrap(), [s("ping")]);
        assert!(a.queue.iter().any(|m| m.is_signal(IFACE, "Progress")), "signal not queued");
        let m = a.wait_signal(Duration::ZERO, |m| m.is_signal(IFACE, "Progress")).unwrap();
        assert_eq!(m.unwrap().body, [Value::U32(50)]);
    }

    #[test]
    fn bus_wait_signal_with_nothing_arriving_times_out_with_none() {
        let Some(d) = Daemon::start() else { return };
        let mut c = d.conn();
        c.add_match(RULE).unwrap();
        let t0 = Instant::now();
        let never = |m: &Message| m.member.as_deref() == Some("Never");
        assert!(c.wait_signal(Duration::from_millis(300), never).unwrap().is_none());
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(300) && took < T, "{took:?}");
    }

    #[test]
    fn peer_to_peer_big_and_batched_messages() {
        let name = format!("berth-dbus-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            // The server's side of the auth, a byte at a time so as not to read past BEGIN.
            let (mut lines, mut line, mut byte) = (Vec::new(), Vec::new(), [0]);
            while lines.len() < 2 {
                sock.read_exact(&mut byte).unwrap();
                line.push(byte[0]);
                if line.ends_with(b"\r\n") {
                    lines.push(String::from_utf8(std::mem::take(&mut line)).unwrap());
                    if lines.len() == 1 {
                        sock.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n").unwrap();
                    }
                }
            }
            let uid = nix::unistd::getuid().to_string();
            let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
            assert_eq!(lines, [format!("\0AUTH EXTERNAL {hex}\r\n"), "BEGIN\r\n".into()]);
            let mut c = Conn::from_stream(sock, false);
            let deadline = Instant::now() + T;
            let reply = |call: &Message, body: Vec<Value>| {
                let mut r = Message::new(MessageType::MethodReturn);
                (r.serial, r.reply_serial, r.body) = (1, Some(call.serial), body);
                r
            };
            // A reply much bigger than one read.
            let call = c.recv(deadline).unwrap().unwrap();
            assert_eq!((call.destination.as_deref(), call.member.as_deref()), (None, Some("Big")));
            let bytes = (0..300_000).map(|i| Value::Byte(i as u8)).collect();
            c.send(reply(&call, vec![arr("y", bytes)]), deadline).unwrap();
            // Two signals and a reply in one write.
            let call = c.recv(deadline).unwrap().unwrap();
            let mut batch = signal_msg("One", vec![]).encode().unwrap();
            batch.extend(signal_msg("Two", vec![s("2")]).encode().unwrap());
            batch.extend(reply(&call, vec![Value::Bool(true)]).encode().unwrap());
            c.write_all(&batch, deadline).unwrap();
        });
        let mut c = Conn::connect(&format!("unix:path=/nonexistent;unix:abstract={name}"), false).unwrap();
        assert_eq!(c.unique_name(), None);
        c.add_match(RULE).unwrap(); // a no-op on a direct connection
        let r = c.call("", OBJ, IFACE, "Big", &[], T).unwrap().unwrap();
        let bytes = r[0].as_array().unwrap();
        assert_eq!((bytes.len(), &bytes[299_999]), (300_000, &Value::Byte(299_999u32 as u8)));
        let r = c.call("", OBJ, IFACE, "Batch", &[], T).unwrap().unwrap();
        assert_eq!(r, [Value::Bool(true)]);
        server.join().unwrap();
        for member in ["One", "Two"] {
            let m = c.wait_signal(Duration::ZERO, |m| m.is_signal(IFACE, member)).unwrap();
            assert!(m.is_some(), "{member} not queued");
        }
    }
}
