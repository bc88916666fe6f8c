use super::{Global, OutputFormat};
use anyhow::Result;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output: a table, or a JSON array of states
    #[arg(
        short,
        long,
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    pub format: OutputFormat,
    /// Only print the ids, one a line
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the containers of this sandbox (an id prefix works)
    #[arg(long, value_name = "ID")]
    pub sandbox: Option<String>,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let store = g.store();
    let mut states = crate::container::list::list(&store)?;
    if let Some(sb) = &a.sandbox {
        let sb = store.resolve(sb)?;
        states.retain(|s| s.sandbox.as_deref() == Some(sb.as_str()));
    }
    // One write for the whole listing, not one per line; a closed reader ends coop quietly.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, super::out());
    if a.quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
    } else if a.format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string(&states)?)?;
    } else {
        // runc's columns, with SANDBOX before OWNER.
        let rows: Vec<[String; 7]> = states
            .iter()
            .map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.sandbox.clone().unwrap_or_else(|| "-".to_string()),
                    s.owner.clone(),
                ]
            })
            .collect();
        let head = [
            "ID", "PID", "STATUS", "BUNDLE", "CREATED", "SANDBOX", "OWNER",
        ]
        .map(String::from);
        let mut w = [0usize; 7];
        for r in std::iter::once(&head).chain(rows.iter()) {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        for r in std::iter::once(&head).chain(rows.iter()) {
            let last = r.len() - 1;
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.clone()
                    } else {
                        format!("{c:<width$}", width = w[i])
                    }
                })
                .collect();
            writeln!(out, "{}", line.join("   "))?;
        }
    }
    out.flush()?;
    Ok(0)
}
