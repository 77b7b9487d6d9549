//! Everything that talks to the Linux kernel, one concern per module.

pub mod apparmor;
pub mod capabilities;
pub mod cgroups;
pub mod dbus;
pub mod devices;
pub mod exe_seal;
pub mod exec;
pub mod fds;
pub mod idmap;
pub mod memory;
pub mod mount_api;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod proc;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod secure_join;
pub mod signals;
pub mod sysctl;
pub mod tty;
pub mod user;
