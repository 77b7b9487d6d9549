//! Everything that talks to the Linux kernel, one concern per module.

pub mod apparmor;
pub mod bitmask;
pub mod capabilities;
pub mod cgroups;
pub mod dbus;
pub mod devices;
pub mod exe_seal;
pub mod exec;
pub mod fds;
pub mod ioprio;
pub mod memory;
pub mod mempolicy;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod netdev;
pub mod proc;
pub mod rlimits;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod secure_join;
pub mod signals;
pub mod sysctl;
pub mod tty;
pub mod user;
