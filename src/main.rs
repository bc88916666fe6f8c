//! Parse, call one library function, map errors to exit codes.
use coop::cli::{self, LogFormat};
use coop::logger;
use std::io::Write;

fn main() {
    coop::linux::selfexe::reexec_early();
    std::panic::set_hook(Box::new(report_panic));
    let cli = match cli::parse_from(cli::go_style_args(std::env::args_os())) {
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
        let _ = cli::out().write_all(cli::version_text().as_bytes());
        return;
    }
    let format = match cli.global.log_format {
        LogFormat::Json => logger::Format::Json,
        LogFormat::Text => logger::Format::Text,
    };
    if let Err(e) = logger::init(cli.global.log.as_deref(), format, cli.global.debug) {
        error_line(&format!("{e:#}"));
        std::process::exit(1);
    }
    if std::env::var_os("COOP_TEST_PANIC").is_some() {
        // A seam for the tests of the panic hook (integration/errors.rs): coop has no known
        // panic to trigger otherwise.
        panic!("COOP_TEST_PANIC is set");
    }
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Once to the log (where podman and containerd read it), once to stderr.
            let msg = coop::error::render(&e);
            log::error!("{msg}");
            error_line(&msg);
            coop::error::exit_code(&e)
        }
    };
    std::process::exit(code);
}

/// The one line a failed command leaves on stderr: `coop: error: <what>: <cause>`. A closed
/// stderr is not a reason to panic.
fn error_line(msg: &str) {
    let _ = writeln!(std::io::stderr(), "coop: error: {msg}");
}

/// A bug: say so on one line, last in the log (podman and containerd read only the log) and on
/// stderr, then let the process end as Rust does (abort in release builds).
fn report_panic(info: &std::panic::PanicHookInfo) {
    let what = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let msg = format!("panic{at}: {}", what.replace('\n', " "));
    log::error!("{msg}");
    error_line(&msg);
}
