use super::Global;
use crate::container::create::{create, CreateOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    pub id: String,
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra inherited fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Sandbox to join; the container's own id makes it the sandbox's root
    #[arg(long)]
    pub sandbox: Option<String>,
    /// With --sandbox: also join the sandbox's pid namespace
    #[arg(long = "share-pid")]
    pub share_pid: bool,
    /// With --sandbox on the root: JSON LinuxResources for the whole sandbox's cgroup
    #[arg(long = "sandbox-resources")]
    pub sandbox_resources: Option<PathBuf>,
}

impl Args {
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            relay_tty: false,
            sandbox: self.sandbox.clone(),
            share_pid: self.share_pid,
            sandbox_resources: self.sandbox_resources.clone(),
            hooks_dirs: vec![],
            rootless: Default::default(),
        }
    }
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let mut o = a.options();
    o.hooks_dirs = g.hooks_dirs();
    o.rootless = g.mode;
    create(&g.store(), &o)?;
    Ok(0)
}
