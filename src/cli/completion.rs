//! `coop completion SHELL`: a completion script from the clap definitions.
use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  coop completion bash > /usr/share/bash-completion/completions/coop
  coop completion zsh > /usr/share/zsh/vendor-completions/_coop
  coop completion fish > /usr/share/fish/vendor_completions.d/coop.fish
(make install puts them there.)")]
pub struct Args {
    /// The shell the script is for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

pub fn run(a: Args) -> Result<i32> {
    use clap::CommandFactory;
    use std::io::Write;
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "coop", &mut script);
    match std::io::stdout().write_all(&script) {
        // `coop completion bash | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => r.map(|()| 0).context("write the completion script"),
    }
}
