use super::Global;
use crate::container::create::{create, CreateOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// The new container's id (unique under --root)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Bundle directory: holds config.json (and usually the rootfs)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master (SCM_RIGHTS) when process.terminal is true
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's init pid to (as the host sees it)
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for a rootfs on a ramdisk)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra inherited fds to the container: fds 3 to 3+N-1 (e.g. 2)
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    /// Sandbox to join (shares its network, ipc and uts namespaces); the container's own id
    /// makes it the sandbox's root
    #[arg(long, value_name = "ID")]
    pub sandbox: Option<String>,
    /// With --sandbox: also join the sandbox's pid namespace
    #[arg(long = "share-pid")]
    pub share_pid: bool,
    /// With --sandbox on the root: a JSON LinuxResources file limiting the whole sandbox's
    /// cgroup (e.g. {"memory":{"limit":268435456}})
    #[arg(long = "sandbox-resources", value_name = "FILE")]
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
