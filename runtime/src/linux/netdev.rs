//! `linux.netDevices`: moving host network devices into the container's network
//! namespace, renamed, up, with their permanent global addresses (which the kernel drops
//! when a device changes namespace). Done from the runtime namespace over rtnetlink; the
//! messages are a few fixed structs and attributes, built here by hand.
//!
//! Nothing moves them back: when the namespace goes away, the kernel returns physical
//! devices to the host (under their container name, or `dev%d` on a clash) and destroys
//! virtual ones (dummy, veth, macvlan), as the runtime-spec describes.

use crate::error::{Context, Error, Result};
use crate::linux::namespaces;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// Checks names before anything exists: the container needs a network namespace of its
/// own, each name must be one the kernel takes, and each host device must exist.
pub fn validate(devices: &BTreeMap<String, berth_spec::NetDevice>, has_netns: bool) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    if !has_netns {
        return Err(Error::new("linux.netDevices needs a network namespace in linux.namespaces"));
    }
    for (host, d) in devices {
        check_name(host).map_err(|e| Error::new(format!("linux.netDevices: host device {host:?}: {e}")))?;
        if let Some(n) = &d.name {
            check_name(n).map_err(|e| Error::new(format!("linux.netDevices[{host:?}].name {n:?}: {e}")))?;
        }
        index_of(host)?;
    }
    Ok(())
}

/// The kernel's rule for interface names (dev_valid_name).
fn check_name(n: &str) -> std::result::Result<(), &'static str> {
    if n.is_empty() || n.len() >= 16 {
        return Err("a device name has 1 to 15 bytes");
    }
    if n == "." || n == ".." || n.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace()) {
        return Err("a device name cannot be . or .. nor hold '/', ':' or white space");
    }
    Ok(())
}

fn index_of(host: &str) -> Result<i32> {
    let c = std::ffi::CString::new(host).map_err(|_| Error::new("linux.netDevices: NUL in a device name"))?;
    // SAFETY: if_nametoindex reads the NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(std::io::Error::last_os_error()).with_ctx(|| format!("linux.netDevices: host device {host:?}"));
    }
    Ok(i as i32)
}

/// Moves every device into the network namespace at `ns_path`, renames it, re-adds its
/// permanent global addresses and sets it up.
pub fn move_all(devices: &BTreeMap<String, berth_spec::NetDevice>, ns_path: &str) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let ns = namespaces::open(ns_path)?;
    let mut host = Netlink::open()?;
    let mut inside = Netlink::open_in(&ns, ns_path)?;
    for (name, d) in devices {
        let new_name = d.name.as_deref().unwrap_or(name);
        let what = || format!("linux.netDevices: move {name:?} to the container as {new_name:?}");
        let index = index_of(name)?;
        let addrs = host.permanent_addrs(index).with_ctx(what)?;
        let mut link = ifinfomsg(index, 0, 0);
        attr(&mut link, IFLA_NET_NS_FD, &(ns.as_raw_fd() as u32).to_ne_bytes());
        attr(&mut link, IFLA_IFNAME, &[new_name.as_bytes(), b"\0"].concat());
        host.request(RTM_NEWLINK, NLM_F_ACK, &link).with_ctx(what)?;
        // The kernel keeps the index unless the namespace already has it; a name with a
        // %d template is only known by its index.
        let found = if new_name.contains('%') { inside.link_index(index, None) } else { inside.link_index(0, Some(new_name)) };
        let index = found.with_ctx(|| format!("linux.netDevices: find {new_name:?} in the container"))?;
        for a in &addrs {
            let mut m = a.clone();
            m[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
            inside
                .request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &m)
                .with_ctx(|| format!("linux.netDevices: restore an address of {new_name:?}"))?;
        }
        let up = ifinfomsg(index, libc::IFF_UP as u32, libc::IFF_UP as u32);
        inside.request(RTM_NEWLINK, NLM_F_ACK, &up).with_ctx(|| format!("linux.netDevices: set {new_name:?} up"))?;
    }
    Ok(())
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut m = vec![0u8; IFINFOMSG_LEN]; // family AF_UNSPEC, type 0
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// Appends an rtattr (length, type, data, padding to 4 bytes).
fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The (type, data) attributes in `buf`.
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((u16::from_ne_bytes([buf[2], buf[3]]), &buf[4..len]));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    fn open() -> Result<Netlink> {
        // SAFETY: a plain socket(2); we own the returned fd.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).ctx("linux.netDevices: rtnetlink socket");
        }
        // SAFETY: raw is a fresh fd nothing else owns.
        Ok(Netlink { fd: unsafe { OwnedFd::from_raw_fd(raw) }, seq: 0 })
    }

    /// A socket of the network namespace `ns`: a netlink socket talks to the namespace
    /// its creator was in, so this thread enters `ns` for the socket(2) and leaves.
    fn open_in(ns: &OwnedFd, path: &str) -> Result<Netlink> {
        let own = namespaces::open("/proc/thread-self/ns/net")?;
        namespaces::join(ns, "network", path)?;
        let s = Netlink::open();
        namespaces::join(&own, "network", "/proc/thread-self/ns/net")?;
        s
    }

    /// Sends one request and returns the payloads of the replies before its ack (or, for
    /// a dump, before its end).
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let mut m = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&typ.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: send reads m.len() bytes of m; the kernel (port 0) is the default peer.
        if unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx("rtnetlink send");
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error()).ctx("rtnetlink recv");
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
                let mtype = u16::from_ne_bytes([rest[4], rest[5]]);
                let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap_or_default());
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(Error::new("rtnetlink: truncated reply"));
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
                if seq != self.seq {
                    continue;
                }
                match mtype {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = i32::from_ne_bytes(payload.get(0..4).and_then(|b| b.try_into().ok()).unwrap_or_default());
                        if errno == 0 {
                            return Ok(out);
                        }
                        return Err(Error::from(std::io::Error::from_raw_os_error(-errno)));
                    }
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }

    /// The device's addresses that must follow it: permanent, of global scope. Each is
    /// an RTM_NEWADDR body (ifaddrmsg and the address attributes) ready to send.
    fn permanent_addrs(&mut self, index: i32) -> Result<Vec<Vec<u8>>> {
        let dump = self.request(RTM_GETADDR, NLM_F_DUMP, &[0u8; IFADDRMSG_LEN])?;
        let mut out = Vec::new();
        for m in dump.iter().filter(|m| m.len() >= IFADDRMSG_LEN) {
            let (flags8, scope) = (m[2], m[3]);
            if u32::from_ne_bytes(m[4..8].try_into().unwrap_or_default()) as i32 != index || scope != RT_SCOPE_UNIVERSE {
                continue;
            }
            let all = attrs(&m[IFADDRMSG_LEN..]);
            // IFA_FLAGS carries all 32 bits; ifa_flags only the low 8.
            let flags = all.iter().find(|(t, _)| *t == IFA_FLAGS).and_then(|(_, d)| <[u8; 4]>::try_from(*d).ok()).map_or(flags8 as u32, u32::from_ne_bytes);
            if flags & IFA_F_PERMANENT == 0 {
                continue;
            }
            let mut body = m[..IFADDRMSG_LEN].to_vec();
            for (t, d) in all.into_iter().filter(|(t, _)| matches!(*t, IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST)) {
                attr(&mut body, t, d);
            }
            out.push(body);
        }
        Ok(out)
    }

    /// The index of a link, found by name or by index.
    fn link_index(&mut self, index: i32, name: Option<&str>) -> Result<i32> {
        let mut m = ifinfomsg(index, 0, 0);
        if let Some(n) = name {
            attr(&mut m, IFLA_IFNAME, &[n.as_bytes(), b"\0"].concat());
        }
        let r = self.request(RTM_GETLINK, NLM_F_ACK, &m)?;
        r.first()
            .filter(|p| p.len() >= IFINFOMSG_LEN)
            .map(|p| i32::from_ne_bytes(p[4..8].try_into().unwrap_or_default()))
            .ok_or_else(|| Error::new("no such device"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_read_back() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, b"eth0\0");
        attr(&mut b, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(b.len(), 12 + 8);
        let a = attrs(&b);
        assert_eq!(a, [(IFLA_IFNAME, &b"eth0\0"[..]), (IFLA_NET_NS_FD, &7u32.to_ne_bytes()[..])]);
    }

    #[test]
    fn device_names_follow_the_kernels_rule() {
        assert!(check_name("eth0").is_ok() && check_name("ctr%d").is_ok());
        for bad in ["", "a/b", "a:b", "a b", ".", "..", "sixteen-bytes-xx"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
