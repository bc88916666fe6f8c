//! `coop man DIR` (hidden; `make` runs it): coop.1 and coop-COMMAND.1 for each command,
//! rendered from the clap definitions.
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages into (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(a: Args) -> Result<i32> {
    use clap::CommandFactory;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    clap_mangen::generate_to(super::Cli::command(), &a.dir)
        .with_context(|| format!("write man pages into {}", a.dir.display()))?;
    Ok(0)
}
