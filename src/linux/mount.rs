//! Mount options: the fstab-style words of a spec mount turned into flags, propagation,
//! mount_setattr attributes and the data string, and the syscalls that apply them.
use anyhow::Result;
use nix::mount::MsFlags;
use std::os::fd::AsRawFd;

/// MOUNT_ATTR_* values (linux/mount.h); libc does not export all of them.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// A parsed option list.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Flags set on the mount (MS_RDONLY, MS_NOSUID, ... and MS_BIND|MS_REC for binds).
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw`, `suid`, ...).
    pub clear: MsFlags,
    /// Propagation changes, applied in order after the mount (MS_SHARED, MS_REC|MS_SLAVE, ...).
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes for mount_setattr(AT_RECURSIVE): (set, clear).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Everything else, passed to the filesystem.
    pub data: Vec<String>,
    /// `tmpcopyup`: copy the directory's content into a tmpfs mounted over it.
    pub tmpcopyup: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: vec![],
            rec_set: 0,
            rec_clear: 0,
            data: vec![],
            tmpcopyup: false,
        }
    }
}

impl Options {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// rootfsPropagation and mount propagation words.
pub fn propagation_flag(word: &str) -> Option<MsFlags> {
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

pub fn parse(opts: &[String]) -> Result<Options> {
    let mut o = Options::default();
    for word in opts {
        let w = word.as_str();
        let (set, clear) = match w {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            // Recursive variants, applied with mount_setattr(AT_RECURSIVE).
            "rro" => {
                o.rec_set |= MOUNT_ATTR_RDONLY;
                continue;
            }
            "rrw" => {
                o.rec_clear |= MOUNT_ATTR_RDONLY;
                continue;
            }
            "rnosuid" => {
                o.rec_set |= MOUNT_ATTR_NOSUID;
                continue;
            }
            "rsuid" => {
                o.rec_clear |= MOUNT_ATTR_NOSUID;
                continue;
            }
            "rnodev" => {
                o.rec_set |= MOUNT_ATTR_NODEV;
                continue;
            }
            "rdev" => {
                o.rec_clear |= MOUNT_ATTR_NODEV;
                continue;
            }
            "rnoexec" => {
                o.rec_set |= MOUNT_ATTR_NOEXEC;
                continue;
            }
            "rexec" => {
                o.rec_clear |= MOUNT_ATTR_NOEXEC;
                continue;
            }
            "rnodiratime" => {
                o.rec_set |= MOUNT_ATTR_NODIRATIME;
                continue;
            }
            "rdiratime" => {
                o.rec_clear |= MOUNT_ATTR_NODIRATIME;
                continue;
            }
            "rnosymfollow" => {
                o.rec_set |= MOUNT_ATTR_NOSYMFOLLOW;
                continue;
            }
            "rsymfollow" => {
                o.rec_clear |= MOUNT_ATTR_NOSYMFOLLOW;
                continue;
            }
            "rrelatime" => {
                o.rec_clear |= MOUNT_ATTR__ATIME;
                o.rec_set |= MOUNT_ATTR_RELATIME;
                continue;
            }
            "rnoatime" => {
                o.rec_clear |= MOUNT_ATTR__ATIME;
                o.rec_set |= MOUNT_ATTR_NOATIME;
                continue;
            }
            "rstrictatime" => {
                o.rec_clear |= MOUNT_ATTR__ATIME;
                o.rec_set |= MOUNT_ATTR_STRICTATIME;
                continue;
            }
            // Idmapped mounts: made by linux/idmap.rs, never passed to mount(2).
            "idmap" | "ridmap" => continue,
            _ => {
                if let Some(p) = propagation_flag(w) {
                    o.propagation.push(p);
                } else {
                    o.data.push(word.clone());
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.clear.insert(clear);
        o.clear.remove(set);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Options {
        parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "noexec", "nodev", "mode=755", "size=65536k"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert!(!o.is_bind());
    }

    #[test]
    fn later_words_win() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_RDONLY));
        let o = p(&["rw", "ro"]);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.clear.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn binds_propagation_recursive() {
        let o = p(&["rbind", "rprivate", "ro", "rro", "rnosuid", "tmpcopyup"]);
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert!(o.tmpcopyup);
        assert!(o.data.is_empty());
        let o = p(&["rnoatime"]);
        assert_eq!(
            (o.rec_set, o.rec_clear),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)
        );
        assert!(p(&["idmap", "ridmap"]).data.is_empty());
        assert_eq!(
            propagation_flag("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("bogus"), None);
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` refers to (`AT_EMPTY_PATH` is added to `at_flags`).
pub fn mount_setattr(
    fd: &impl AsRawFd,
    at_flags: i32,
    set: u64,
    clear: u64,
) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid fd, a NUL-terminated empty path and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at_flags | libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
