//! The state directory: `<root>/<id>/` holds `meta.json`, `config.json` (the spec as it was at
//! create) and, between create and start, `exec.fifo`.
//!
//! Writers hold an exclusive `flock` on the container's directory itself (so no lock file can
//! be missing, replaced or left behind, and a read-only --root needs none); a sandbox member's
//! create holds its root's shared. Readers (`state`, `list`, `ps`, `kill`, `exec`) take no
//! lock: files are replaced atomically (a temp file in the same directory, rename; fsync'd where [`durable`] says so), so
//! meta.json is always whole. A container directory is created with mkdir, which is also what
//! makes a duplicate id fail.
use crate::error::Error;
use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const META: &str = "meta.json";
pub const CONFIG: &str = "config.json";
pub const FIFO: &str = "exec.fifo";
/// The lock file of coop versions before the directory itself was locked.
const LOCK: &str = "lock";

/// IDs: letters, digits and `_ + - .`, no `..`, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    if id == "." || id.contains("..") {
        return bad("it must not contain \"..\" or be \".\"");
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A container directory, with its lock held unless it was opened by a reader
/// ([`Store::open`]). Dropping it releases the lock.
#[derive(Debug)]
pub struct Locked {
    pub id: String,
    pub dir: PathBuf,
    _lock: Option<Flock<File>>,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make the directory for a new container and lock it exclusively.
    pub fn create(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .with_context(|| format!("create state directory {}", self.root.display()))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()).into())
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("create container directory {}", dir.display()))
            }
        }
        match lock_dir(&dir, true) {
            Ok(lock) => Ok(Locked {
                id: id.to_string(),
                dir,
                _lock: Some(lock),
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Whether the directory of `id` holds only what coop puts there, so that removing a
    /// container with a missing or corrupt meta.json (`delete --force`) never removes
    /// something else that happens to sit under --root.
    pub fn looks_like_container(&self, id: &str) -> bool {
        let Ok(rd) = fs::read_dir(self.dir(id)) else {
            return false;
        };
        rd.flatten().all(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            [META, CONFIG, FIFO, LOCK, crate::container::sandbox::SHM_DIR].contains(&name.as_ref())
                || (name.starts_with('.') && name.ends_with(".tmp"))
        })
    }

    /// Lock an existing container's directory. `id` must be a full id.
    pub fn lock(&self, id: &str, exclusive: bool) -> Result<Locked> {
        let dir = self.dir(id);
        let lock = match lock_dir(&dir, exclusive) {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return Err(Error::NotFound(id.to_string()).into()),
            Err(e) => return Err(e),
        };
        // The directory may have been deleted (and maybe made again by another create) while
        // we waited for the lock: ours must still be the one at its path.
        let same = match (lock.metadata(), fs::metadata(&dir)) {
            (Ok(a), Ok(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.ino() == b.ino() && a.dev() == b.dev() && a.nlink() > 0
            }
            _ => false,
        };
        if !same {
            return Err(Error::NotFound(id.to_string()).into());
        }
        Ok(Locked {
            id: id.to_string(),
            dir,
            _lock: Some(lock),
        })
    }

    /// An existing container's directory for reading, without a lock: readers never wait on
    /// a writer, and work on a read-only --root.
    pub fn open(&self, id: &str) -> Result<Locked> {
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(Error::NotFound(id.to_string()).into());
        }
        Ok(Locked {
            id: id.to_string(),
            dir,
            _lock: None,
        })
    }

    /// Whether some command holds the container's exclusive lock right now (a create that
    /// is still going, say). Takes nothing: the probe's shared lock is released at once.
    pub fn writer_active(&self, id: &str) -> bool {
        let Ok(f) = open_dir(&self.dir(id)) else {
            return false;
        };
        matches!(
            Flock::lock(f, FlockArg::LockSharedNonblock),
            Err((_, nix::errno::Errno::EWOULDBLOCK))
        )
    }

    /// All container ids (directory names), sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("read state directory {}", self.root.display()))
            }
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_id(n).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Resolve an exact id or an unambiguous prefix of one.
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        if prefix.is_empty() {
            return Err(Error::InvalidId {
                id: String::new(),
                reason: "it is empty",
            }
            .into());
        }
        if prefix.contains('/') || prefix.contains('\0') {
            return Err(Error::NotFound(prefix.to_string()).into());
        }
        if self.dir(prefix).is_dir() {
            return Ok(prefix.to_string());
        }
        let candidates: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(prefix))
            .collect();
        match candidates.len() {
            0 => Err(Error::NotFound(prefix.to_string()).into()),
            1 => Ok(candidates.into_iter().next().unwrap()),
            _ => Err(Error::Ambiguous {
                prefix: prefix.to_string(),
                candidates,
            }
            .into()),
        }
    }
}

impl Locked {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Remove the whole directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.dir)
            .with_context(|| format!("remove container directory {}", self.dir.display()))
    }
}

fn open_dir(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_DIRECTORY)
        .open(dir)
}

/// flock the container directory itself: nothing to create, so it works on a directory
/// that is half made or half removed, and on a read-only --root.
fn lock_dir(dir: &Path, exclusive: bool) -> Result<Flock<File>> {
    let f = open_dir(dir).with_context(|| format!("open {}", dir.display()))?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    loop {
        match Flock::lock(f.try_clone()?, arg) {
            Ok(l) => return Ok(l),
            Err((_, nix::errno::Errno::EINTR)) => continue,
            Err((_, e)) => return Err(e).with_context(|| format!("lock {}", dir.display())),
        }
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .map(|io| io.kind() == ErrorKind::NotFound)
            .unwrap_or(false)
    })
}

/// Whether a file written into `dir` must be fsync'd before it is renamed into place, so that
/// after a power loss it holds its old or its new content, never a torn one. Not on tmpfs or
/// ramfs (where /run usually is): their content does not survive a power loss, and rename alone
/// already gives readers the whole old or the whole new file. On a disk filesystem, once per
/// process (one fsync per command): the first file a command writes is the one that may be new
/// (config.json, the first meta.json); later writes replace an existing file by rename, which
/// ext4 (auto_da_alloc), xfs and btrfs flush before the rename commits.
fn durable(dir: &Path) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SYNCED: AtomicBool = AtomicBool::new(false);
    const TMPFS_MAGIC: libc::__fsword_t = 0x0102_1994;
    const RAMFS_MAGIC: libc::__fsword_t = 0x8584_58f6;
    let volatile = nix::sys::statfs::statfs(dir)
        .map(|s| [TMPFS_MAGIC, RAMFS_MAGIC].contains(&{ s.filesystem_type().0 }))
        .unwrap_or(false);
    !volatile && !SYNCED.swap(true, Ordering::Relaxed)
}

/// Replace `path` atomically: write a temp file beside it, fsync if [`durable`], rename.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable(dir) {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        for ok in ["a", "abc-1_2+3.4", "A.b", &"x".repeat(1024)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            "a/b",
            "a b",
            "é",
            &"x".repeat(1025),
            "a\0",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_lock_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("root"));
        let a = store.create("alpha1").unwrap();
        drop(a);
        store.create("alpha2").unwrap();
        store.create("beta").unwrap();
        let err = store.create("beta").unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Error>(),
            Some(Error::Exists(_))
        ));
        assert_eq!(store.resolve("b").unwrap(), "beta");
        assert_eq!(store.resolve("alpha1").unwrap(), "alpha1");
        let err = store.resolve("alp").unwrap_err();
        assert!(err.to_string().contains("alpha1, alpha2"), "{err}");
        let err = store.resolve("zeta").unwrap_err();
        assert_eq!(err.to_string(), "container zeta does not exist");
        assert!(store.lock("zeta", false).is_err());
        assert_eq!(store.ids().unwrap(), vec!["alpha1", "alpha2", "beta"]);
    }

    #[test]
    fn exclusive_lock_excludes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let held = store.create("c").unwrap();
        // A second open file description cannot take the lock while it is held.
        let f = File::open(&held.dir).unwrap();
        assert!(Flock::lock(f, FlockArg::LockSharedNonblock).is_err());
        assert!(store.writer_active("c"));
        drop(held);
        assert!(!store.writer_active("c"));
        let f = File::open(store.dir("c")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockSharedNonblock).is_ok());
        let shared = store.lock("c", false).unwrap();
        let f = File::open(&shared.dir).unwrap();
        assert!(Flock::lock(f, FlockArg::LockSharedNonblock).is_ok());
        // No lock file is made: nothing is left to be replaced or to keep a directory alive.
        assert!(!store.dir("c").join(LOCK).exists());
    }

    #[test]
    fn fsync_only_where_a_power_loss_keeps_the_file() {
        // tmpfs: never (a mount of our own, so the test does not depend on /dev/shm).
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path();
        if nix::mount::mount(
            Some("tmpfs"),
            m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .is_err()
        {
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return;
        }
        let volatile = [durable(m), durable(m)];
        nix::mount::umount(m).unwrap();
        assert_eq!(volatile, [false, false]);
        // A disk filesystem (the test's temporary directory is not a tmpfs here): once per
        // process at most, so never twice in a row.
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let (first, second) = (durable(disk.path()), durable(disk.path()));
        assert!(!(first && second), "fsync'd twice in one process");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("meta.json");
        write_atomic(&p, b"{\"a\":1}", 0o600).unwrap();
        write_atomic(&p, b"{}", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        // No temp file is left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        // A write into a missing directory fails and names the file.
        let err = write_atomic(&tmp.path().join("nope/m.json"), b"x", 0o600).unwrap_err();
        assert!(err.to_string().contains("nope/m.json"));
    }
}
