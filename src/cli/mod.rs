//! runc's command line. Options may come before or after positional arguments, in `-b B`,
//! `--bundle B` and `--bundle=B` forms; global flags are accepted anywhere.
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod restore;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::container::Store;
use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const SPEC_VERSION: &str = "1.2.1";

#[derive(Debug, Parser)]
#[command(
    name = "coop",
    about = "coop: an OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--format` of list and ps.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Directory for container state (default /run/coop for root, $XDG_RUNTIME_DIR/coop otherwise).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<String>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility (coop manages cgroupfs paths itself).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// CRIU binary for checkpoint and restore (default: criu in PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<String>,
    /// hooks.d directory (repeatable; default /usr/share/containers/oci/hooks.d and
    /// /etc/coop/hooks.d)
    #[arg(long = "hooks-dir", global = true, value_name = "DIR")]
    pub hooks_dir: Vec<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long)]
    pub version: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container
    Create(create::Args),
    /// Start a created container
    Start(start::Args),
    /// Create, start and wait for a container
    Run(run::Args),
    /// Print a container's state
    State(state::Args),
    /// List containers
    #[command(alias = "ps-all")]
    List(list::Args),
    /// Send a signal to a container
    Kill(kill::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// List a container's processes
    Ps(ps::Args),
    /// Change a container's resource limits
    Update(update::Args),
    /// Resource statistics and OOM events (JSON)
    Events(events::Args),
    /// Run a process in a running container
    Exec(exec::Args),
    /// Delete a container
    Delete(delete::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Checkpoint a running container with CRIU
    // podman passes some flags twice (`--leave-running --leave-running`): Go's flag parser
    // takes the last, and so do we.
    #[command(args_override_self = true)]
    Checkpoint(checkpoint::Args),
    /// Restore a container from a checkpoint
    #[command(args_override_self = true)]
    Restore(restore::Args),
    /// CRIU's action script during a restore (internal)
    #[command(name = "criu-notify", hide = true)]
    CriuNotify(restore::NotifyArgs),
    /// Print what coop supports (JSON)
    Features(features::Args),
}

impl Global {
    /// `--root`, or the default: never derived from HOME or PATH (podman calls us with an
    /// almost empty environment).
    pub fn store(&self) -> Store {
        if let Some(r) = &self.root {
            return Store::new(r.clone());
        }
        if !nix::unistd::geteuid().is_root() {
            if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
                return Store::new(PathBuf::from(x).join("coop"));
            }
        }
        Store::new("/run/coop")
    }
}

impl Global {
    pub fn hooks_dirs(&self) -> Vec<PathBuf> {
        if self.hooks_dir.is_empty() {
            crate::linux::hooksd::DEFAULT_DIRS
                .iter()
                .map(PathBuf::from)
                .collect()
        } else {
            self.hooks_dir.clone()
        }
    }
}

/// Go's flag parser takes `-flag` as well as `--flag`, and containerd's go-runc passes
/// `-no-subreaper` to `restore` that way: the single-dash spelling of coop's long-only flags
/// that clients are known to use, spelled with two dashes for clap.
pub fn go_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.map(|a| {
        if a == "-no-subreaper" {
            "--no-subreaper".into()
        } else {
            a
        }
    })
    .collect()
}

pub fn version_text() -> String {
    format!(
        "coop version {VERSION}\ncommit: {}\nspec: {SPEC_VERSION}\n",
        option_env!("COOP_COMMIT").unwrap_or("unknown")
    )
}

/// Run one command; the result is coop's exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    if g.systemd_cgroup || g.rootless.is_some() {
        log::debug!(
            "accepted runc flags without effect: systemd-cgroup={} rootless={:?}",
            g.systemd_cgroup,
            g.rootless,
        );
    }
    let Some(cmd) = cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    if matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        // These leave coop processes inside the container: see linux/selfexe.rs.
        crate::linux::selfexe::reexec_sealed()?;
    }
    match cmd {
        Command::Create(a) => create::run(g, a),
        Command::Start(a) => start::run(g, a),
        Command::Run(a) => run::run(g, a),
        Command::State(a) => state::run(g, a),
        Command::List(a) => list::run(g, a),
        Command::Kill(a) => kill::run(g, a),
        Command::Pause(a) => pause::pause(g, a),
        Command::Resume(a) => pause::resume(g, a),
        Command::Ps(a) => ps::run(g, a),
        Command::Update(a) => update::run(g, a),
        Command::Events(a) => events::run(g, a),
        Command::Exec(a) => exec::run(g, a),
        Command::Delete(a) => delete::run(g, a),
        Command::Spec(a) => spec::run(g, a),
        Command::Features(a) => features::run(g, a),
        Command::Checkpoint(a) => checkpoint::run(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::CriuNotify(a) => restore::notify(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("coop").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn both_argument_orders() {
        for args in [
            &["create", "--bundle", "/b", "c1"][..],
            &["create", "c1", "--bundle", "/b"],
            &["create", "c1", "-b", "/b"],
            &["create", "--bundle=/b", "c1"],
        ] {
            match parse(args).command {
                Some(Command::Create(a)) => {
                    assert_eq!(a.id, "c1");
                    assert_eq!(a.bundle, PathBuf::from("/b"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn globals_anywhere_and_runc_flags_accepted() {
        let c = parse(&[
            "--root",
            "/r",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "--rootless",
            "false",
            "kill",
            "c",
            "KILL",
            "--log",
            "/l",
        ]);
        assert_eq!(c.global.root.as_deref(), Some(std::path::Path::new("/r")));
        assert_eq!(c.global.log.as_deref(), Some("/l"));
        assert_eq!(c.global.log_format, LogFormat::Json);
        match c.command {
            Some(Command::Kill(k)) => assert_eq!(k.signal.as_deref(), Some("KILL")),
            other => panic!("{other:?}"),
        }
        let c = parse(&["--log-format=json", "delete", "-f", "x"]);
        assert!(matches!(c.command, Some(Command::Delete(d)) if d.force));
        let c = parse(&[
            "run",
            "-d",
            "--pid-file",
            "p",
            "--preserve-fds",
            "2",
            "x",
            "--no-pivot",
        ]);
        assert!(
            matches!(c.command, Some(Command::Run(r)) if r.detach && r.create.preserve_fds == 2 && r.create.no_pivot)
        );
    }

    #[test]
    fn checkpoint_flags_podman_repeats() {
        let c = parse(&[
            "checkpoint",
            "--image-path",
            "/i",
            "--leave-running",
            "--leave-running",
            "x",
        ]);
        assert!(
            matches!(c.command, Some(Command::Checkpoint(a)) if a.leave_running && a.id == "x")
        );
        let c = parse(&["restore", "-d", "--detach", "--bundle", "/b", "y"]);
        assert!(matches!(c.command, Some(Command::Restore(a)) if a.detach && a.id == "y"));
        // containerd's shim (go-runc) spells it with one dash.
        let args = ["coop", "restore", "-no-subreaper", "-d", "z"].map(std::ffi::OsString::from);
        let c = Cli::try_parse_from(go_style_args(args.into_iter())).unwrap();
        assert!(matches!(c.command, Some(Command::Restore(a)) if a.no_subreaper && a.id == "z"));
    }

    #[test]
    fn default_root_ignores_home_and_path() {
        let g = parse(&["list"]).global;
        if nix::unistd::geteuid().is_root() {
            assert_eq!(g.store().root(), std::path::Path::new("/run/coop"));
        }
    }
}
