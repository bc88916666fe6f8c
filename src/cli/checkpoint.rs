use super::Global;
use crate::container::checkpoint::{checkpoint, CheckpointOptions, CriuOptions, ManageCgroupsMode};
use anyhow::{bail, Result};
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

/// The CRIU options `checkpoint` and `restore` share (runc's names).
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct CriuArgs {
    /// Directory of the checkpoint images (default ./checkpoint)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's log (default: the image directory)
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs (a terminal from outside the container)
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// CRIU's cgroup mode: soft, full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_enum)]
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// Namespace to create empty on restore (only "network")
    #[arg(long = "empty-ns")]
    pub empty_ns: Option<String>,
    /// Deduplicate pages against the parent images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Lazy migration (refused: not supported by coop)
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// Page server ADDRESS:PORT (refused: not supported by coop)
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// With --lazy-pages (refused)
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
}

impl CriuArgs {
    pub fn options(&self, g: &Global) -> Result<CriuOptions> {
        if self.lazy_pages {
            bail!("--lazy-pages is not supported by coop (it needs CRIU's page server and lazy-pages daemon)");
        }
        if self.page_server.is_some() {
            bail!("--page-server is not supported by coop");
        }
        if self.status_fd.is_some() {
            bail!("--status-fd is only for --lazy-pages, which coop does not support");
        }
        let empty_netns = match self.empty_ns.as_deref() {
            None => false,
            Some("network" | "net") => true,
            Some(other) => {
                bail!("--empty-ns {other}: CRIU can only leave the network namespace empty")
            }
        };
        Ok(CriuOptions {
            criu: g.criu.clone(),
            image_path: self.image_path.clone(),
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            auto_dedup: self.auto_dedup,
            manage_cgroups_mode: self.manage_cgroups_mode.map(|m| match m {
                CgroupsMode::Soft => ManageCgroupsMode::Soft,
                CgroupsMode::Full => ManageCgroupsMode::Full,
                CgroupsMode::Strict => ManageCgroupsMode::Strict,
                CgroupsMode::Ignore => ManageCgroupsMode::Ignore,
            }),
            empty_netns,
        })
    }
}

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// Id of the running container to checkpoint (a unique prefix works)
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Previous (pre-)dump's images, relative to --image-path
    #[arg(long = "parent-path")]
    pub parent_path: Option<String>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump only memory, leaving the container running (for a later --parent-path)
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let o = CheckpointOptions {
        criu: a.criu.options(g)?,
        parent_path: a.parent_path,
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
    };
    checkpoint(&g.store(), &a.id, &o)?;
    Ok(0)
}
