//! Parse, call one library function, map errors to exit codes.
use coop::cli::{self, LogFormat};
use coop::logger;

fn main() {
    coop::linux::selfexe::reexec_early();
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(c) => c,
        // --help and --version: clap prints them on stdout and exits 0.
        Err(e) if !e.use_stderr() => e.exit(),
        // A usage error: one line, exit code 2 (as clap, and GNU tools, use for bad usage).
        Err(e) => {
            let args: Vec<String> = std::env::args().collect();
            eprintln!("{}", cli::usage_error(&e, &args));
            std::process::exit(2);
        }
    };
    // Before anything opens a file: coop's own fds must not take a --preserve-fds number.
    coop::linux::fds::reserve(cli.preserved_fds());
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
