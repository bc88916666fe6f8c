//! The handful of typed errors that `main` maps to exit codes. Everything else is an
//! `anyhow::Error` with lower-case context naming the object it concerns.
use crate::container::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message contains "does not exist": containerd and podman match on that text.
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {id} is {status}: cannot {verb}")]
    WrongState {
        id: String,
        status: Status,
        verb: &'static str,
    },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container id prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
}

impl Error {
    /// Exit codes. runc exits 1 for every failure and clients only test for non-zero, so the
    /// typed errors get distinct codes above 1 only where a script can act on them.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => 1,
            Error::Exists(_) => 1,
            Error::WrongState { .. } => 1,
            Error::InvalidId { .. } | Error::Ambiguous { .. } => 2,
        }
    }
}

/// Exit code for any error chain: the first typed error found decides, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map(Error::exit_code)
        .unwrap_or(1)
}

/// An errno as Go prints it ("no such file or directory"): podman and containerd match these
/// texts, and Rust's own form ("No such file or directory (os error 2)") would not match.
pub fn errno_text(errno: i32) -> String {
    let s = nix::errno::Errno::from_raw(errno).desc();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => format!("errno {errno}"),
    }
}

/// The whole chain on one line, outermost context first and the root cause last.
pub fn render(err: &anyhow::Error) -> String {
    err.chain()
        .map(|c| {
            if let Some(n) = c
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.raw_os_error())
            {
                return errno_text(n);
            }
            if let Some(e) = c.downcast_ref::<nix::errno::Errno>() {
                return errno_text(*e as i32);
            }
            c.to_string()
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn renders_go_style() {
        let e: anyhow::Result<()> =
            Err(std::io::Error::from_raw_os_error(libc::ENOENT)).context("open /x");
        assert_eq!(
            render(&e.unwrap_err()),
            "open /x: no such file or directory"
        );
        let e: anyhow::Result<()> = Err(nix::errno::Errno::EACCES).context("mount");
        assert_eq!(render(&e.unwrap_err()), "mount: permission denied");
        let e = anyhow::Error::from(Error::NotFound("c".into()));
        assert_eq!(exit_code(&e), 1);
        assert_eq!(exit_code(&e.context("x")), 1);
        let e = anyhow::Error::from(Error::InvalidId {
            id: "a/b".into(),
            reason: "r",
        });
        assert_eq!(exit_code(&e), 2);
    }
}
