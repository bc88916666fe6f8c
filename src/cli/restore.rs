use super::checkpoint::CriuArgs;
use super::Global;
use crate::container::restore::{restore, RestoreOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// Id of the restored container (a new one, or the checkpointed one after its delete)
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master (refused: see docs/checkpoint.md)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the container is restored
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted for runc compatibility (CRIU makes the root)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
}

/// `coop criu-notify DIR`: CRIU's action script during a restore (not for users).
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// The restored container's state directory
    pub dir: PathBuf,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let o = RestoreOptions {
        criu: a.criu.options(g)?,
        id: a.id,
        bundle: a.bundle,
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        detach: a.detach,
        no_subreaper: a.no_subreaper,
        hooks_dirs: g.hooks_dirs(),
    };
    restore(&g.store(), &o)
}

pub fn notify(a: NotifyArgs) -> Result<i32> {
    crate::container::restore::notify(&a.dir)?;
    Ok(0)
}
