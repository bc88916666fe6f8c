use super::Global;
use crate::container::exec::{exec, ExecOptions};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Process;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// The command and its arguments (unless --process), e.g. sh -c 'echo hi'
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
    /// A full OCI process JSON file (runtime-spec `process`) instead of COMMAND and the flags
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Give the process a terminal (relayed in the foreground, or sent to --console-socket)
    #[arg(short, long)]
    pub tty: bool,
    /// Detach: return once the process runs, without waiting for its exit code
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to (as the host sees it), e.g. with -d
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master with -t (as with create)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container [default: the container's process.cwd]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Environment variable to set, repeatable (e.g. -e TERM=xterm); the container's env
    /// is kept
    #[arg(short, long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// User and group to run as, numeric (e.g. 1000 or 1000:1000) [default: the container's]
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group id, repeatable (e.g. -g 10 -g 20)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Capability to add to the bounding, effective and permitted sets, repeatable (e.g.
    /// CAP_NET_ADMIN)
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privileges: setuid binaries and file capabilities gain nothing
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (refused where AppArmor is not enabled)
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process (ignored where SELinux is not enabled)
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass N extra inherited fds to the process: fds 3 to 3+N-1 (e.g. 1)
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    /// Allow exec into a paused container (runc refuses one by default too)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH
    /// (repeatable, one path per v1 controller)
    #[arg(long = "cgroup", value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
}

/// The process: --process as given, or the container's own process with the flags applied
/// (runc's defaults: the container's env, user, cwd, capabilities and no_new_privileges).
fn process(a: &Args, base: Option<Process>) -> Result<Process> {
    if let Some(f) = &a.process {
        let data = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
        return serde_json::from_slice(&data)
            .with_context(|| format!("invalid process in {}", f.display()));
    }
    if a.command.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut p = base.unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>(), g.parse::<u32>().map(Some)),
            None => (u.parse::<u32>(), Ok(None)),
        };
        let uid = uid.with_context(|| format!("--user {u}: expected uid[:gid]"))?;
        let gid = gid.with_context(|| format!("--user {u}: expected uid[:gid]"))?;
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(if uid == 0 { 0 } else { user.gid() }));
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::json!(name))
                    .with_context(|| format!("unknown capability {name}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, p) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(p);
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(x) = &a.apparmor {
        p.set_apparmor_profile(Some(x.clone()));
    }
    if let Some(x) = &a.process_label {
        p.set_selinux_label(Some(x.clone()));
    }
    Ok(p)
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let store = g.store();
    let base = {
        let c = crate::container::Container::read(&store, &a.id)?;
        c.spec()?.process().clone()
    };
    let id = store.resolve(&a.id)?;
    let o = ExecOptions {
        id,
        process: process(&a, base)?,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: crate::cgroups::sub::parse(&a.cgroup)?,
    };
    exec(&store, &o)
}
