//! runc's command line. Options may come before or after positional arguments, in `-b B`,
//! `--bundle B` and `--bundle=B` forms; global flags are accepted anywhere.
mod checkpoint;
mod completion;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod man;
mod pause;
mod ps;
mod restore;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::container::Store;
pub use crate::linux::rootless::{Flag as RootlessFlag, Rootless};
use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const SPEC_VERSION: &str = "1.3.0";

/// The examples at the end of `coop --help` (and of coop(1)).
const EXAMPLES: &str = "\
Examples:
  coop spec && coop run -b . demo        run the bundle in the current directory
  coop run -d -b /srv/web web            detached; then: coop exec -t web sh
  coop list                              the containers under --root
  coop update --memory 256m --pids-limit 100 web
  coop kill web KILL && coop delete web

Global options go before or after the command. 'coop COMMAND --help' shows a command's options.";

#[derive(Debug, Parser)]
#[command(
    name = "coop",
    about = "coop: an OCI container runtime",
    version = VERSION,
    disable_version_flag = true,
    after_help = EXAMPLES
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
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Directory for container state [default: /run/coop for root, $XDG_RUNTIME_DIR/coop
    /// otherwise]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log file, appended to [default: stderr]; podman and containerd read errors from it
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<String>,
    /// Format of --log: text lines, or runc's JSON lines {"level","msg","time"}
    #[arg(
        long = "log-format",
        global = true,
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log debug messages too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility (coop manages cgroupfs paths itself).
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode (default auto: as runc, when the euid is not 0 or the user namespace
    /// does not map the host's root).
    #[arg(long, global = true, value_enum, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<RootlessFlag>,
    /// `--rootless` decided, once, by [`dispatch`].
    #[arg(skip)]
    pub mode: Rootless,
    /// CRIU binary for checkpoint and restore (default: criu in PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<String>,
    /// hooks.d directory of oci-hooks(5) JSON files, repeatable [default:
    /// /usr/share/containers/oci/hooks.d and /etc/coop/hooks.d]
    #[arg(long = "hooks-dir", global = true, value_name = "DIR")]
    pub hooks_dir: Vec<PathBuf>,
    /// Print the version, commit and OCI runtime-spec version
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
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell)
    Completion(completion::Args),
    /// Write a man page per command into a directory (used by `make`)
    #[command(hide = true)]
    Man(man::Args),
}

impl Global {
    /// `--root`, or the default ([`Rootless::default_root`], set by [`dispatch`]): never
    /// derived from HOME or PATH (podman calls us with an almost empty environment).
    pub fn store(&self) -> Store {
        match &self.root {
            Some(r) => Store::new(r.clone()),
            None => Store::new("/run/coop"),
        }
    }

    /// Decide rootless mode and the default --root once, for every command that uses a state
    /// directory.
    fn resolve(&mut self, needs_root: bool) -> Result<()> {
        self.mode = Rootless::decide(self.rootless);
        if needs_root && self.root.is_none() {
            self.root = Some(
                self.mode
                    .default_root(std::env::var_os("XDG_RUNTIME_DIR"))?,
            );
        }
        Ok(())
    }
}

impl Cli {
    /// N of the fds 3..3+N the command passes to a container: --preserve-fds, plus LISTEN_FDS
    /// for create and run.
    pub fn preserved_fds(&self) -> i32 {
        let listen = crate::linux::fds::listen_fds;
        match &self.command {
            Some(Command::Create(c)) => c.preserve_fds.max(0).saturating_add(listen()),
            Some(Command::Run(r)) => r.create.preserve_fds.max(0).saturating_add(listen()),
            Some(Command::Exec(e)) => e.preserve_fds.max(0),
            _ => 0,
        }
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

/// The command line as parsed and as `--help` shows it. Each command gets hidden copies of the
/// global options (clap then does not add visible ones), so `coop run --help` lists run's own
/// options and points to `coop --help` for the global ones, which work everywhere as before.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    cmd.mut_subcommands(|mut sub| {
        for a in &globals {
            sub = sub.arg(a.clone().hide(true));
        }
        let own = sub.get_after_help().map(|h| format!("{h}\n\n"));
        sub.after_help(format!(
            "{}Global options (--root, --log, --log-format, --debug, --hooks-dir) work here \
             too: see 'coop --help'.",
            own.unwrap_or_default()
        ))
    })
}

/// Parse a command line (the program name first) with `command()`.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let mut cmd = command();
    let m = cmd.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&m).map_err(|e| e.format(&mut cmd))
}

/// coop's standard output. When its reader has gone away (`coop list | head -1`), coop ends
/// as runc (a Go program) and other Unix tools do: killed by SIGPIPE, quietly, the shell
/// reporting 141. Rust ignores SIGPIPE for the whole process, and coop keeps it so: a hook or
/// an agent that closes its end of a pipe or socket must not kill coop.
pub struct Out(std::io::StdoutLock<'static>);

pub fn out() -> Out {
    Out(std::io::stdout().lock())
}

impl std::io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(die_of_closed_pipe)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(die_of_closed_pipe)
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

fn die_of_closed_pipe(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // SAFETY: restoring the default action of SIGPIPE and raising it, then exiting if it
        // was blocked: plain calls with constant arguments.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(libc::SIGPIPE);
            libc::_exit(128 + libc::SIGPIPE);
        }
    }
    e
}

/// Run one command; the result is coop's exit code.
pub fn dispatch(mut cli: Cli) -> Result<i32> {
    let Some(cmd) = cli.command else {
        let help = command().render_help().to_string();
        std::io::Write::write_all(&mut out(), help.as_bytes())?;
        return Ok(0);
    };
    cli.global
        .resolve(!matches!(cmd, Command::Spec(_) | Command::Features(_)))?;
    let g = &cli.global;
    if g.systemd_cgroup {
        log::debug!(
            "accepted runc flags without effect: systemd-cgroup={}",
            g.systemd_cgroup
        );
    }
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
        Command::Completion(a) => completion::run(a),
        Command::Man(a) => man::run(a),
        Command::Checkpoint(a) => checkpoint::run(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::CriuNotify(a) => restore::notify(a),
    }
}

/// A usage error (unknown flag, bad value, missing argument) as one line naming the flag and
/// the problem, then where to look: `coop: error: unexpected argument '--foo' found (see 'coop
/// run --help')`. clap's own rendering (a tip, the usage, a blank line) is several lines;
/// runc, podman and containerd show one.
pub fn usage_error(e: &clap::Error, args: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if msg.ends_with(':') {
        // "the following required arguments were not provided:" and the list below it
        let items: Vec<&str> = lines
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        msg = format!("{msg} {}", items.join(", "));
    }
    for kind in [ContextKind::SuggestedArg, ContextKind::SuggestedSubcommand] {
        match e.get(kind) {
            Some(ContextValue::String(s)) => msg.push_str(&format!("; did you mean '{s}'?")),
            Some(ContextValue::Strings(v)) if !v.is_empty() => {
                msg.push_str(&format!("; did you mean '{}'?", v.join("' or '")))
            }
            _ => {}
        }
    }
    // The command the error is about: the first argument naming one (clap's "Usage:" line is
    // not in every error).
    let top = command();
    let cmd = args
        .iter()
        .skip(1)
        .find_map(|a| {
            top.get_subcommands()
                .find(|c| c.get_name() == a || c.get_all_aliases().any(|x| x == a))
        })
        .map_or_else(|| "coop".into(), |c| format!("coop {}", c.get_name()));
    format!("coop: error: {msg} (see '{cmd} --help')")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        parse_from(std::iter::once("coop").chain(args.iter().copied())).unwrap()
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

    fn usage(args: &[&str]) -> String {
        let args: Vec<String> = std::iter::once("coop")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        usage_error(&parse_from(&args).unwrap_err(), &args)
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
    fn usage_errors_are_one_line_naming_the_flag() {
        assert_eq!(
            usage(&["run", "--xyzzy", "x"]),
            "coop: error: unexpected argument '--xyzzy' found (see 'coop run --help')"
        );
        assert_eq!(
            usage(&["delete", "--forc", "x"]),
            "coop: error: unexpected argument '--forc' found; did you mean '--force'? \
             (see 'coop delete --help')"
        );
        let e = usage(&["create", "--preserve-fds", "many", "x"]);
        assert!(
            e.starts_with("coop: error: invalid value 'many' for '--preserve-fds <N>'"),
            "{e}"
        );
        assert!(e.ends_with("(see 'coop create --help')"), "{e}");
        assert_eq!(
            usage(&["start"]),
            "coop: error: the following required arguments were not provided: <ID> \
             (see 'coop start --help')"
        );
        assert_eq!(
            usage(&["--root", "/r", "update", "--memory"]),
            "coop: error: a value is required for '--memory <SIZE>' but none was supplied \
             (see 'coop update --help')"
        );
        assert_eq!(
            usage(&["--bogus"]),
            "coop: error: unexpected argument '--bogus' found (see 'coop --help')"
        );
        for args in [&["run", "--foo", "x"][..], &["nosuchverb"], &["start"]] {
            assert!(!usage(args).contains('\n'), "{args:?}");
        }
    }

    #[test]
    fn command_help_points_to_the_global_options_instead_of_repeating_them() {
        let mut cmd = command();
        let sub = cmd.find_subcommand_mut("exec").unwrap();
        let help = sub.render_help().to_string();
        assert!(help.contains("--pid-file"), "{help}");
        assert!(!help.contains("--root <DIR>"), "{help}");
        assert!(help.contains("see 'coop --help'"), "{help}");
        let top = command().render_help().to_string();
        assert!(top.contains("--root <DIR>"), "{top}");
        // They still work after the command, with their values.
        let c = parse(&[
            "exec",
            "--hooks-dir",
            "/h",
            "--debug",
            "c",
            "--root",
            "/r",
            "true",
        ]);
        assert_eq!(c.global.hooks_dir, vec![PathBuf::from("/h")]);
        assert!(c.global.debug);
        assert_eq!(c.global.root.as_deref(), Some(std::path::Path::new("/r")));
    }

    #[test]
    fn every_flag_and_argument_has_help() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = vec![];
        for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            for a in sub.get_arguments() {
                if a.get_help().is_none() && !a.is_hide_set() {
                    missing.push(format!("{} {}", sub.get_name(), a.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn default_root_ignores_home_and_path() {
        let mut g = parse(&["--rootless=false", "list"]).global;
        g.resolve(true).unwrap();
        assert_eq!(g.store().root(), std::path::Path::new("/run/coop"));
        let mut g = parse(&["spec", "--rootless"]).global;
        assert_eq!(g.rootless, Some(RootlessFlag::True));
        g.resolve(false).unwrap();
        assert!(g.mode.is_yes());
    }
}
