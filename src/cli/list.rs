use super::Global;
use anyhow::Result;
use std::io::Write;

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only print ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let states = crate::container::list::list(&g.store())?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
    } else if a.format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(&states)?)?;
    } else {
        let rows: Vec<[String; 6]> = states
            .iter()
            .map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            })
            .collect();
        let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
        let mut w = [0usize; 6];
        for r in std::iter::once(&head).chain(rows.iter()) {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        for r in std::iter::once(&head).chain(rows.iter()) {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 5 {
                        c.clone()
                    } else {
                        format!("{c:<width$}", width = w[i])
                    }
                })
                .collect();
            writeln!(out, "{}", line.join("   "))?;
        }
    }
    Ok(0)
}
