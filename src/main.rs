//! Parse, call one library function, map errors to exit codes.
use clap::Parser;
use coop::cli::{self, Cli, LogFormat};
use coop::logger;

fn main() {
    coop::linux::selfexe::reexec_early();
    let cli = match Cli::try_parse_from(cli::go_style_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if cli.global.version {
        print!("{}", cli::version_text());
        return;
    }
    let format = match cli.global.log_format {
        LogFormat::Json => logger::Format::Json,
        LogFormat::Text => logger::Format::Text,
    };
    if let Err(e) = logger::init(cli.global.log.as_deref(), format, cli.global.debug) {
        eprintln!("coop: {e:#}");
        std::process::exit(1);
    }
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Once to the log (where podman and containerd read it), once to stderr.
            let msg = coop::error::render(&e);
            log::error!("{msg}");
            eprintln!("coop: {msg}");
            coop::error::exit_code(&e)
        }
    };
    std::process::exit(code);
}
