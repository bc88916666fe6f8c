use super::Global;
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_g: &Global, _a: Args) -> Result<i32> {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": [],
        "mountOptions": crate::linux::mount::known_words().collect::<Vec<_>>(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"org.opencontainers.runtime-spec.features": "coop"}
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::linux::mount;

    /// Every word `features` lists is one the parser takes as an option (not filesystem data,
    /// not refused), and every option the parser takes is listed.
    #[test]
    fn mount_options_agree_with_the_parser() {
        let listed: Vec<&str> = mount::known_words().collect();
        for w in &listed {
            let o = mount::parse(&[w.to_string()]).unwrap_or_else(|e| panic!("{w}: {e:#}"));
            assert!(o.data.is_empty(), "{w} is listed but parsed as data");
        }
        for (w, _) in mount::OPTIONS {
            let ok = mount::parse(&[w.to_string()]).is_ok();
            assert_eq!(
                ok,
                listed.contains(w),
                "{w}: accepted={ok}, listed in features"
            );
        }
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(listed, sorted, "mountOptions must be sorted and unique");
    }
}
