use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Kill a running, paused or created container first (SIGKILL to every process), and
    /// succeed when the container does not exist
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    match crate::container::delete::delete(&g.store(), &a.id, a.force) {
        // Like runc: --force on a container that is already gone succeeds.
        Err(e) if a.force && matches!(e.downcast_ref(), Some(crate::error::Error::NotFound(_))) => {
            Ok(0)
        }
        r => r.map(|()| 0),
    }
}
