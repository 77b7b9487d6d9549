//! `process.ioPriority`: the I/O scheduling class and level of the process (ioprio_set(2)),
//! inherited by everything it starts.

use crate::error::{Context, Error, Result};
use berth_spec::IoPriority;

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// ioprio_set's value for `p`, or an error naming the field that is wrong.
pub fn value(p: &IoPriority) -> Result<libc::c_int> {
    let class = match p.class.as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => return Err(Error::new(format!("process.ioPriority.class {other:?} must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE"))),
    };
    if !(0..=7).contains(&p.priority) {
        return Err(Error::new(format!("process.ioPriority.priority {} is outside 0..7", p.priority)));
    }
    Ok(class << IOPRIO_CLASS_SHIFT | p.priority)
}

/// Sets this process's I/O priority. Only this process (not its process group, which
/// may still be the caller's on the host); the container's processes inherit it. Done
/// before capabilities are dropped: the real-time class needs CAP_SYS_ADMIN.
pub fn apply(p: &IoPriority) -> Result<()> {
    let v = value(p)?;
    // SAFETY: ioprio_set with integer arguments only.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, v) } != 0 {
        return Err(std::io::Error::last_os_error()).with_ctx(|| format!("process.ioPriority: ioprio_set {} {}", p.class, p.priority));
    }
    Ok(())
}
