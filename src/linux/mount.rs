//! Mount options: the fstab-style words of a spec mount turned into flags, propagation,
//! mount_setattr attributes and the data string, and the syscalls that apply them.
use anyhow::{bail, Result};
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

/// MS_NOSYMFOLLOW (linux/mount.h, kernel 5.10); nix's MsFlags does not name it.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// What one option word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Set these MS_* flags on the mount.
    Set(MsFlags),
    /// Clear these MS_* flags.
    Clear(MsFlags),
    /// A propagation change, applied after the mount.
    Propagation(MsFlags),
    /// Set a MOUNT_ATTR_* attribute recursively (mount_setattr with AT_RECURSIVE). An atime
    /// mode (MOUNT_ATTR__ATIME is an enum, not bits) replaces the previous one.
    RecSet(u64),
    /// Clear a MOUNT_ATTR_* attribute recursively.
    RecClear(u64),
    /// `tmpcopyup`: copy the directory's content into the tmpfs mounted over it.
    TmpCopyUp,
    /// `idmap`/`ridmap`: the mount is made id-mapped by linux/idmap.rs; nothing for mount(2).
    Idmap,
    /// A word that is refused, with the reason.
    Refused(&'static str),
}

use Meaning::*;

/// Why `ratime` and `rnostrictatime` are refused: runc clears that one atime value, which
/// mount_setattr(2) rejects with EINVAL (the atime modes are one field, not bits).
const ATIME_CLEAR: &str =
    "the kernel cannot clear one recursive atime mode alone; use rrelatime, rnoatime or rstrictatime";

/// Every option word coop knows, sorted. Any other word is passed to the filesystem as data.
/// The parser and `coop features` ("mountOptions": the words not refused) read this table.
pub static OPTIONS: &[(&str, Meaning)] = &[
    ("async", Clear(MsFlags::MS_SYNCHRONOUS)),
    ("atime", Clear(MsFlags::MS_NOATIME)),
    ("bind", Set(MsFlags::MS_BIND)),
    ("defaults", Set(MsFlags::empty())),
    ("dev", Clear(MsFlags::MS_NODEV)),
    ("diratime", Clear(MsFlags::MS_NODIRATIME)),
    ("dirsync", Set(MsFlags::MS_DIRSYNC)),
    ("exec", Clear(MsFlags::MS_NOEXEC)),
    ("idmap", Idmap),
    ("iversion", Set(MsFlags::MS_I_VERSION)),
    ("lazytime", Set(MsFlags::MS_LAZYTIME)),
    ("loud", Clear(MsFlags::MS_SILENT)),
    ("mand", Set(MsFlags::MS_MANDLOCK)),
    ("noatime", Set(MsFlags::MS_NOATIME)),
    ("nodev", Set(MsFlags::MS_NODEV)),
    ("nodiratime", Set(MsFlags::MS_NODIRATIME)),
    ("noexec", Set(MsFlags::MS_NOEXEC)),
    ("noiversion", Clear(MsFlags::MS_I_VERSION)),
    ("nolazytime", Clear(MsFlags::MS_LAZYTIME)),
    ("nomand", Clear(MsFlags::MS_MANDLOCK)),
    ("norelatime", Clear(MsFlags::MS_RELATIME)),
    ("nostrictatime", Clear(MsFlags::MS_STRICTATIME)),
    ("nosuid", Set(MsFlags::MS_NOSUID)),
    ("nosymfollow", Set(MS_NOSYMFOLLOW)),
    ("private", Propagation(MsFlags::MS_PRIVATE)),
    ("ratime", Refused(ATIME_CLEAR)),
    ("rbind", Set(MsFlags::MS_BIND.union(MsFlags::MS_REC))),
    ("rdev", RecClear(MOUNT_ATTR_NODEV)),
    ("rdiratime", RecClear(MOUNT_ATTR_NODIRATIME)),
    ("relatime", Set(MsFlags::MS_RELATIME)),
    ("remount", Set(MsFlags::MS_REMOUNT)),
    ("rexec", RecClear(MOUNT_ATTR_NOEXEC)),
    ("ridmap", Idmap),
    ("rnoatime", RecSet(MOUNT_ATTR_NOATIME)),
    ("rnodev", RecSet(MOUNT_ATTR_NODEV)),
    ("rnodiratime", RecSet(MOUNT_ATTR_NODIRATIME)),
    ("rnoexec", RecSet(MOUNT_ATTR_NOEXEC)),
    // runc clears MOUNT_ATTR_RELATIME, which is 0: a no-op.
    ("rnorelatime", RecClear(MOUNT_ATTR_RELATIME)),
    ("rnostrictatime", Refused(ATIME_CLEAR)),
    ("rnosuid", RecSet(MOUNT_ATTR_NOSUID)),
    ("rnosymfollow", RecSet(MOUNT_ATTR_NOSYMFOLLOW)),
    ("ro", Set(MsFlags::MS_RDONLY)),
    (
        "rprivate",
        Propagation(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ),
    ("rrelatime", RecSet(MOUNT_ATTR_RELATIME)),
    ("rro", RecSet(MOUNT_ATTR_RDONLY)),
    ("rrw", RecClear(MOUNT_ATTR_RDONLY)),
    (
        "rshared",
        Propagation(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ),
    (
        "rslave",
        Propagation(MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ),
    ("rstrictatime", RecSet(MOUNT_ATTR_STRICTATIME)),
    ("rsuid", RecClear(MOUNT_ATTR_NOSUID)),
    ("rsymfollow", RecClear(MOUNT_ATTR_NOSYMFOLLOW)),
    (
        "runbindable",
        Propagation(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
    ),
    ("rw", Clear(MsFlags::MS_RDONLY)),
    ("shared", Propagation(MsFlags::MS_SHARED)),
    ("silent", Set(MsFlags::MS_SILENT)),
    ("slave", Propagation(MsFlags::MS_SLAVE)),
    ("strictatime", Set(MsFlags::MS_STRICTATIME)),
    ("suid", Clear(MsFlags::MS_NOSUID)),
    ("symfollow", Clear(MS_NOSYMFOLLOW)),
    ("sync", Set(MsFlags::MS_SYNCHRONOUS)),
    ("tmpcopyup", TmpCopyUp),
    ("unbindable", Propagation(MsFlags::MS_UNBINDABLE)),
];

/// The meaning of an option word; None for a filesystem's own option (data).
pub fn meaning(word: &str) -> Option<Meaning> {
    OPTIONS
        .binary_search_by(|(w, _)| (*w).cmp(word))
        .ok()
        .map(|i| OPTIONS[i].1)
}

/// The words coop accepts (for `coop features`), sorted.
pub fn known_words() -> impl Iterator<Item = &'static str> {
    OPTIONS
        .iter()
        .filter(|(_, m)| !matches!(m, Refused(_)))
        .map(|(w, _)| *w)
}

/// rootfsPropagation and mount propagation words.
pub fn propagation_flag(word: &str) -> Option<MsFlags> {
    match meaning(word) {
        Some(Propagation(f)) => Some(f),
        _ => None,
    }
}

/// Parse a mount's option words; later words win over earlier ones.
pub fn parse(opts: &[String]) -> Result<Options> {
    let mut o = Options::default();
    for word in opts {
        match meaning(word) {
            None => o.data.push(word.clone()),
            Some(Set(f)) => {
                o.flags.insert(f);
                o.clear.remove(f);
            }
            Some(Clear(f)) => {
                o.flags.remove(f);
                o.clear.insert(f);
            }
            Some(Propagation(f)) => o.propagation.push(f),
            Some(RecSet(a)) if MOUNT_ATTR__ATIME & a == a => {
                // The atime modes are values of one field: the last one wins.
                o.rec_set = (o.rec_set & !MOUNT_ATTR__ATIME) | a;
                o.rec_clear |= MOUNT_ATTR__ATIME;
            }
            Some(RecSet(a)) => {
                o.rec_set |= a;
                o.rec_clear &= !a;
            }
            Some(RecClear(a)) => {
                o.rec_clear |= a;
                o.rec_set &= !a;
            }
            Some(TmpCopyUp) => o.tmpcopyup = true,
            Some(Idmap) => {}
            Some(Refused(why)) => bail!("mount option {word:?} is refused: {why}"),
        }
    }
    Ok(o)
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

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in OPTIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn symfollow_words() {
        let o = p(&["bind", "nosymfollow"]);
        assert!(o.flags.contains(MS_NOSYMFOLLOW) && o.is_bind());
        let o = p(&["nosymfollow", "symfollow"]);
        assert!(!o.flags.contains(MS_NOSYMFOLLOW) && o.clear.contains(MS_NOSYMFOLLOW));
        let o = p(&["rnosymfollow"]);
        assert_eq!((o.rec_set, o.rec_clear), (MOUNT_ATTR_NOSYMFOLLOW, 0));
        let o = p(&["rnosymfollow", "rsymfollow"]);
        assert_eq!((o.rec_set, o.rec_clear), (0, MOUNT_ATTR_NOSYMFOLLOW));
        let o = p(&["lazytime", "iversion", "noiversion"]);
        assert_eq!(o.flags, MsFlags::MS_LAZYTIME);
        assert!(o.data.is_empty());
    }

    #[test]
    fn atime_modes_last_wins_and_broken_ones_refused() {
        let o = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(
            (o.rec_set, o.rec_clear),
            (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME)
        );
        let o = p(&["rnoatime", "rrelatime"]);
        assert_eq!(
            (o.rec_set, o.rec_clear),
            (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)
        );
        // runc's rnorelatime clears MOUNT_ATTR_RELATIME (0): nothing.
        let o = p(&["rnorelatime"]);
        assert_eq!((o.rec_set, o.rec_clear), (0, 0));
        for w in ["ratime", "rnostrictatime"] {
            let e = parse(&[w.to_string()]).unwrap_err().to_string();
            assert!(e.contains(&format!("{w:?} is refused")), "{e}");
        }
        // Unknown words stay filesystem data, as with runc.
        assert_eq!(p(&["acl", "size=1k"]).data, vec!["acl", "size=1k"]);
    }
}
