use super::{Global, OutputFormat};
use anyhow::{bail, Context, Result};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output: ps(1)'s table, or a JSON array of host pids (as containerd reads it)
    #[arg(
        short,
        long,
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    pub format: OutputFormat,
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Options for ps(1) with --format table (default -ef; e.g. -- -o pid,comm)
    #[arg(
        value_name = "PS_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
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
