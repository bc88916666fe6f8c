use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Signal: a name with or without SIG, or a number (e.g. KILL, SIGHUP, 9)
    #[arg(value_name = "SIGNAL", default_value = "SIGTERM")]
    pub signal: Option<String>,
    /// Signal every process in the container's cgroup, not only its init
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let sig = crate::linux::signals::parse(a.signal.as_deref().unwrap_or("SIGTERM"))?;
    crate::container::kill::kill(&g.store(), &a.id, sig, a.all)?;
    Ok(0)
}
