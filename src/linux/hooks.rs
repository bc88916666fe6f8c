//! OCI hooks: run a hook with the container's state on stdin, its args and env, and its
//! timeout (the hook is killed when it runs out).
//!
//! A hook with `env` gets exactly that environment. Without it, as with runc: a hook run by
//! the runtime (prestart, createRuntime, poststart, poststop) gets coop's own environment,
//! and a hook run in the container (createContainer, startContainer) the container process's
//! (`run_all_in_container`).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The container's state as runtime-spec's state.md defines it: what every hook reads on
/// stdin and what the seccomp agent gets, built only here.
#[derive(serde::Serialize)]
struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    id: &'a str,
    status: &'a str,
    pid: i32,
    bundle: &'a Path,
    annotations: &'a BTreeMap<String, String>,
}

/// The state as JSON (for the seccomp agent).
pub fn state_value(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &Path,
    annotations: &BTreeMap<String, String>,
) -> serde_json::Value {
    serde_json::to_value(OciState {
        oci_version: crate::cli::SPEC_VERSION,
        id,
        status,
        pid,
        bundle,
        annotations,
    })
    .unwrap_or_default()
}

/// The state a hook reads on stdin.
pub fn state(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &Path,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    serde_json::to_vec(&state_value(id, status, pid, bundle, annotations)).unwrap_or_default()
}

/// Run `hooks` in order; the first failure stops and is the error.
pub fn run_all(stage: &str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    run_each(stage, hooks, state, None)
}

/// As `run_all`, for the hooks run inside the container: a hook without `env` gets
/// `process_env`, the environment of the container's process.
pub fn run_all_in_container(
    stage: &str,
    hooks: &[Hook],
    state: &[u8],
    process_env: &[String],
) -> Result<()> {
    run_each(stage, hooks, state, Some(process_env))
}

fn run_each(
    stage: &str,
    hooks: &[Hook],
    state: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state, default_env)
            .with_context(|| format!("{stage} hook #{i} ({})", h.path().display()))?;
    }
    Ok(())
}

/// Run every hook; failures are warnings (poststart, poststop).
pub fn run_all_warn(stage: &str, hooks: &[Hook], state: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(h, state, None) {
            log::warn!(
                "{stage} hook #{i} ({}): {}",
                h.path().display(),
                crate::error::render(&e)
            );
        }
    }
}

/// `default_env`: the environment of a hook without `env`; None: coop's own.
fn run(h: &Hook, state: &[u8], default_env: Option<&[String]>) -> Result<()> {
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(env) = h.env().as_deref().or(default_env) {
        cmd.env_clear();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // A hook starts like any process: a foreground `run` or `exec` blocks nearly every signal
    // (to forward them), and a hung hook must still die of SIGTERM.
    // SAFETY: reset_all makes only sigaction and sigprocmask system calls (async-signal-safe,
    // no allocation), as required between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            super::signals::reset_all();
            Ok(())
        })
    };
    let mut child = cmd.spawn().context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        if let Some(st) = child.try_wait().context("wait")? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let err = err.trim();
        bail!("{status}{}{err}", if err.is_empty() { "" } else { ": " });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn stdin_args_env_timeout_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $1 $FOO\" > {0}.args","arg1"],"env":["FOO=bar"]}}"#,
            out.display()
        ));
        let st = state("c1", "created", 42, Path::new("/b"), &BTreeMap::new());
        run_all("prestart", &[h], &st).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(v["status"], "created");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["id"], "c1");
        let args = std::fs::read_to_string(tmp.path().join("out.args")).unwrap();
        assert_eq!(args, "arg1  bar\n"); // $0 is arg1, $1 is empty
        let slow = hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#);
        let t = Instant::now();
        let err = format!("{:#}", run_all("poststart", &[slow], &st).unwrap_err());
        assert!(
            err.contains("timed out after 1s") && t.elapsed() < Duration::from_secs(4),
            "{err}"
        );
        let fail = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}"#);
        let err = format!("{:#}", run_all("createRuntime", &[fail], &st).unwrap_err());
        assert!(
            err.contains("createRuntime hook #0")
                && err.contains("exit status: 3")
                && err.contains("nope"),
            "{err}"
        );
    }
}
