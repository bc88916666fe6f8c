//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//!
//! JSON lines are `{"level":"error","msg":"...","time":"2024-01-01T00:00:00.000000000Z"}`, the
//! format conmon and containerd's shim read back to show the runtime's error. Text lines follow
//! logrus: `time="..." level=error msg="..."`.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.format, record.level(), &record.args().to_string());
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            // Without --log, only warnings and debug output go to stderr; errors are printed
            // once by main.
            None if record.level() != log::Level::Error => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            None => {}
        }
    }

    fn flush(&self) {}
}

/// Install the logger. A log file that cannot be opened is an error of its own.
pub fn init(path: Option<&str>, format: Format, debug: bool) -> anyhow::Result<()> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("open log file {p}: {e}"))?,
        )),
        _ => None,
    };
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let logger = Box::new(Logger {
        file,
        format,
        level,
    });
    log::set_max_level(level);
    let _ = log::set_boxed_logger(logger);
    Ok(())
}

pub fn format_line(format: Format, level: log::Level, msg: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let level = if level == "warn" { "warning" } else { &level };
    let time = rfc3339_now();
    match format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({ "level": level, "msg": msg, "time": time })
        ),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds, as Go's time.RFC3339Nano prints it.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn json_line_has_runc_fields() {
        let l = format_line(Format::Json, log::Level::Error, "boom \"x\"");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let t = format_line(Format::Text, log::Level::Warn, "w");
        assert!(t.contains("level=warning msg=\"w\""), "{t}");
    }
}
