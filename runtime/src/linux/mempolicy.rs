//! `linux.memoryPolicy`: the NUMA memory policy of the container's process
//! (set_mempolicy(2)), inherited by everything it starts.

use crate::error::{Context, Error, Result};
use crate::linux::bitmask;
use berth_spec::MemoryPolicy;

pub const MODES: &[(&str, libc::c_int)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

pub const FLAGS: &[(&str, libc::c_int)] = &[("MPOL_F_NUMA_BALANCING", 1 << 13), ("MPOL_F_RELATIVE_NODES", 1 << 14), ("MPOL_F_STATIC_NODES", 1 << 15)];

/// set_mempolicy's mode (with its flags) and node list, checked as far as the config
/// alone tells: which modes take nodes and which flags go together.
pub fn parse(p: &MemoryPolicy) -> Result<(libc::c_int, Vec<usize>)> {
    let mode = MODES.iter().find(|(n, _)| *n == p.mode).map(|(_, v)| *v).ok_or_else(|| {
        Error::new(format!("linux.memoryPolicy.mode {:?} is not one of {}", p.mode, MODES.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")))
    })?;
    let mut flags = 0;
    for f in &p.flags {
        flags |=
            FLAGS.iter().find(|(n, _)| n == f).map(|(_, v)| *v).ok_or_else(|| {
                Error::new(format!("linux.memoryPolicy.flags: {f:?} is not one of {}", FLAGS.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")))
            })?;
    }
    let nodes = bitmask::parse(p.nodes.as_deref().unwrap_or("")).map_err(|e| Error::new(format!("linux.memoryPolicy.nodes: {e}")))?;
    match p.mode.as_str() {
        "MPOL_DEFAULT" | "MPOL_LOCAL" if !nodes.is_empty() => bail_field(format!("{} takes no nodes", p.mode))?,
        "MPOL_BIND" | "MPOL_INTERLEAVE" | "MPOL_WEIGHTED_INTERLEAVE" | "MPOL_PREFERRED_MANY" if nodes.is_empty() => {
            bail_field(format!("{} needs at least one node in linux.memoryPolicy.nodes", p.mode))?
        }
        _ => {}
    }
    if flags & (1 << 14) != 0 && flags & (1 << 15) != 0 {
        bail_field("MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES exclude each other".into())?;
    }
    if flags != 0 && matches!(p.mode.as_str(), "MPOL_DEFAULT" | "MPOL_LOCAL") {
        bail_field(format!("{} takes no flags", p.mode))?;
    }
    Ok((mode | flags, nodes))
}

fn bail_field(msg: String) -> Result<()> {
    Err(Error::new(format!("linux.memoryPolicy: {msg}")))
}

/// Sets this process's memory policy; the kernel checks the nodes against the host's.
pub fn apply(p: &MemoryPolicy) -> Result<()> {
    let (mode, nodes) = parse(p)?;
    let mask = bitmask::to_mask(&nodes);
    let (ptr, maxnode) = if nodes.is_empty() { (std::ptr::null(), 0) } else { (mask.as_ptr(), mask.len() * libc::c_ulong::BITS as usize + 1) };
    // SAFETY: the kernel reads maxnode-1 bits from the mask, which holds that many.
    if unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_ctx(|| format!("linux.memoryPolicy: set_mempolicy {} nodes {:?}", p.mode, p.nodes.as_deref().unwrap_or("")));
    }
    Ok(())
}
