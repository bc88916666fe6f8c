use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
}

pub fn pause(g: &Global, a: Args) -> Result<i32> {
    crate::container::pause::pause(&g.store(), &a.id)?;
    Ok(0)
}

pub fn resume(g: &Global, a: Args) -> Result<i32> {
    crate::container::pause::resume(&g.store(), &a.id)?;
    Ok(0)
}
