use super::Global;
use anyhow::Result;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let s = crate::container::state::state(&g.store(), &a.id)?;
    writeln!(super::out(), "{}", serde_json::to_string_pretty(&s)?)?;
    Ok(0)
}
