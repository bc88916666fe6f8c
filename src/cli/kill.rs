use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Signal name or number (default SIGTERM)
    pub signal: Option<String>,
    /// Signal every process in the container's cgroup
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let sig = crate::linux::signals::parse(a.signal.as_deref().unwrap_or("SIGTERM"))?;
    crate::container::kill::kill(&g.store(), &a.id, sig, a.all)?;
    Ok(0)
}
