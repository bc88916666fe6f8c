use super::{Global, OutputFormat};
use anyhow::{bail, Context, Result};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    pub id: String,
    /// Options for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let pids = crate::container::ps::pids(&g.store(), &a.id)?;
    if a.format == OutputFormat::Json {
        // containerd reads this: a JSON array of host pids.
        writeln!(super::out(), "{}", serde_json::to_string(&pids)?)?;
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    write!(
        super::out(),
        "{}",
        crate::container::ps::filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?
    )?;
    Ok(0)
}
