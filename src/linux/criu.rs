//! Running CRIU through its command line: finding the binary, checking its version and the
//! kernel features it needs, and running `dump`, `pre-dump` and `restore` with a log whose
//! errors become ours. (Why the command line and not `criu swrk`: docs/checkpoint.md.)
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The oldest CRIU coop drives: the cgroup v2 freezer (`--freeze-cgroup` on a cgroup2
/// directory) and `--external mnt[]` both work from 3.14.
pub const MIN_VERSION: (u32, u32, u32) = (3, 14, 0);

/// Where criu is looked for when `--criu` is not given and PATH is unset (podman calls the
/// runtime with an almost empty environment).
const FALLBACK_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Dump,
    PreDump,
    Restore,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Dump => "dump",
            Action::PreDump => "pre-dump",
            Action::Restore => "restore",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Criu {
    pub bin: PathBuf,
}

impl Criu {
    /// `--criu PATH` (a name without a slash is looked up in PATH), default `criu`.
    pub fn find(flag: Option<&str>) -> Result<Criu> {
        let name = flag.unwrap_or("criu");
        if name.contains('/') {
            let p = PathBuf::from(name);
            if !p.is_file() {
                bail!("criu binary {name} (--criu): no such file");
            }
            return Ok(Criu { bin: p });
        }
        let path = std::env::var_os("PATH").filter(|p| !p.is_empty());
        let dirs: Vec<PathBuf> = match &path {
            Some(p) => std::env::split_paths(p).collect(),
            None => FALLBACK_DIRS.iter().map(PathBuf::from).collect(),
        };
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|bin| Criu { bin })
            .with_context(|| {
                format!("{name} not found in PATH: checkpoint/restore needs CRIU (apt-get install criu, or --criu PATH)")
            })
    }

    /// `criu --version`, as (major, minor, sublevel).
    pub fn version(&self) -> Result<(u32, u32, u32)> {
        let out = Command::new(&self.bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {} --version", self.bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_version(&text).with_context(|| {
            format!(
                "{} --version printed no version: {text:?}",
                self.bin.display()
            )
        })
    }

    /// Refuse a CRIU older than [`MIN_VERSION`] or one that `criu check` says cannot work on
    /// this kernel (the error carries CRIU's own reason).
    pub fn check(&self) -> Result<()> {
        let v = self.version()?;
        if v < MIN_VERSION {
            bail!(
                "criu {}.{}.{} ({}) is too old: coop needs CRIU {}.{} or newer",
                v.0,
                v.1,
                v.2,
                self.bin.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            );
        }
        self.run_check(&[]).with_context(|| {
            format!(
                "criu {}.{}.{} cannot checkpoint on this kernel (`criu check` fails)",
                v.0, v.1, v.2
            )
        })
    }

    /// `criu check --feature NAME`.
    pub fn check_feature(&self, feature: &str) -> Result<()> {
        self.run_check(&["--feature", feature])
            .with_context(|| format!("`criu check --feature {feature}` fails"))
    }

    fn run_check(&self, extra: &[&str]) -> Result<()> {
        let out = Command::new(&self.bin)
            .arg("check")
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {} check", self.bin.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        bail!(
            "{}",
            first_error(&text).unwrap_or_else(|| format!("exit {:?}", out.status.code()))
        );
    }

    /// Run `criu ACTION ARGS` with its log at `work_dir/<action>.log` (verbosity 4, as runc);
    /// a failure carries CRIU's first error line and the log's path. `cgroup_procs`: files the
    /// child writes its own pid into before it execs criu (a restore starts in the new
    /// container's cgroup, so that what it restores lands there).
    pub fn run(
        &self,
        action: Action,
        args: &[OsString],
        work_dir: &Path,
        cgroup_procs: &[PathBuf],
    ) -> Result<()> {
        self.run_with(action, args, work_dir, cgroup_procs, |_| {})
    }

    /// [`Criu::run`], with `configure` adding to the command (a restore's mount namespace).
    pub fn run_with(
        &self,
        action: Action,
        args: &[OsString],
        work_dir: &Path,
        cgroup_procs: &[PathBuf],
        configure: impl FnOnce(&mut Command),
    ) -> Result<()> {
        let log = work_dir.join(format!("{}.log", action.word()));
        let mut cmd = Command::new(&self.bin);
        cmd.arg(action.word())
            .arg("-v4")
            .arg("--log-file")
            .arg(&log)
            .arg("--work-dir")
            .arg(work_dir)
            .args(args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        if !cgroup_procs.is_empty() {
            let procs = cgroup_procs.to_vec();
            // SAFETY: coop is single-threaded here, so the child may allocate; it only writes
            // files and reports failure as an io::Error, which Command turns into spawn's error.
            unsafe {
                cmd.pre_exec(move || {
                    for p in &procs {
                        std::fs::write(p, b"0")?;
                    }
                    Ok(())
                });
            }
        }
        configure(&mut cmd);
        log::debug!("running {:?}", cmd);
        let status = cmd
            .status()
            .with_context(|| format!("run {} {}", self.bin.display(), action.word()))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let why = first_error(&text).unwrap_or_else(|| format!("exit {:?}", status.code()));
        bail!(
            "criu {} failed: {why} (log: {})",
            action.word(),
            log.display()
        );
    }
}

/// "Version: 3.17.1" (or "Version: 4.0") anywhere in `text`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))?;
    let mut parts = line.trim().split('.').map(|p| p.trim().parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let sub = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, sub))
}

/// CRIU's first "Error (file:line): message" line, as "message", or its last non-empty line.
fn first_error(text: &str) -> Option<String> {
    let errors = text
        .lines()
        .filter(|l| l.contains("Error (") || l.starts_with("Error"));
    if let Some(l) = errors.into_iter().next() {
        let msg = l.split_once("): ").map(|(_, m)| m).unwrap_or(l);
        return Some(msg.trim().to_string());
    }
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// `--external mnt[KEY]:VALUE` for one mount (dump: KEY is the mount point in the container,
/// VALUE a cookie; restore: KEY the cookie, VALUE the host path to mount). CRIU splits at the
/// first `]:`, so neither may hold `]`.
pub fn external_mount(key: &str, value: &Path) -> Result<OsString> {
    if key.contains(']') || key.contains(':') {
        bail!("mount point {key}: CRIU cannot name a mount holding ']' or ':'");
    }
    let mut s = OsString::from(format!("mnt[{key}]:"));
    s.push(value);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("Version: 3.17.1\n"), Some((3, 17, 1)));
        assert_eq!(
            parse_version("Version: 4.0\nGitID: v4.0\n"),
            Some((4, 0, 0))
        );
        assert_eq!(parse_version("criu\n"), None);
        assert!(parse_version("Version: 3.13").unwrap() < MIN_VERSION);
    }

    #[test]
    fn errors_from_logs() {
        let log = "(00.0001) info\n(00.0002) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n(00.0003) Error (criu/kerndat.c:1615): kerndat failed\n";
        assert_eq!(
            first_error(log).unwrap(),
            "vdso: Failed to fill self vdso symtable"
        );
        assert_eq!(first_error("a\nlast words\n\n").unwrap(), "last words");
        assert!(first_error("").is_none());
    }

    #[test]
    fn external_mount_syntax() {
        assert_eq!(
            external_mount("/data", Path::new("/srv/d")).unwrap(),
            OsString::from("mnt[/data]:/srv/d")
        );
        assert!(external_mount("/a]b", Path::new("/x")).is_err());
    }
}
