use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::container::start::start(&g.store(), &a.id)?;
    Ok(0)
}
