use super::Global;
use crate::container::run::{run as run_container, RunOptions};
use anyhow::Result;

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return once the container is started (its exit code is not waited for)
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container (stopped) after it exits, for `state` and `delete` later
    #[arg(long)]
    pub keep: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let mut create = a.create.options();
    create.hooks_dirs = g.hooks_dirs();
    create.rootless = g.mode;
    run_container(
        &g.store(),
        &RunOptions {
            create,
            detach: a.detach,
            keep: a.keep,
        },
    )
}
