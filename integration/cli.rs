//! The command line as a user meets it: one-line usage errors, --help and --version, shell
//! completions, and `make install` with its man pages.
use crate::common::*;
use std::path::Path;
use std::process::Command;

fn coop(args: &[&str]) -> std::process::Output {
    Command::new(coop_bin()).args(args).output().unwrap()
}

#[test]
fn usage_error_is_one_line_naming_the_flag_and_exits_2() {
    for (args, want) in [
        (
            &["run", "--xyzzy", "c1"][..],
            "coop: error: unexpected argument '--xyzzy' found (see 'coop run --help')",
        ),
        (
            &["--root", "/nonexistent", "update", "--memory"],
            "coop: error: a value is required for '--memory <SIZE>' but none was supplied \
             (see 'coop update --help')",
        ),
        (
            &["exec", "--preserve-fds", "x", "c1", "true"],
            "coop: error: invalid value 'x' for '--preserve-fds <N>': invalid digit found in \
             string (see 'coop exec --help')",
        ),
        (
            &["nosuchverb"],
            "coop: error: unrecognized subcommand 'nosuchverb' (see 'coop --help')",
        ),
    ] {
        let o = coop(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), format!("{want}\n"), "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    let o = coop(&["--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("coop run -d -b"), "{help}");
    let o = coop(&["update", "--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--memory <SIZE>"), "{}", stdout(&o));
    assert!(stdout(&o).contains("e.g. 256m"), "{}", stdout(&o));
    let o = coop(&["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("coop version "), "{}", stdout(&o));
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _coop"),
        ("zsh", "#compdef coop"),
        ("fish", "complete -c coop"),
    ] {
        let o = coop(&["completion", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        // Every command is completed, and its flags.
        for word in ["exec", "update", "pid-file", "memory"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script parses.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("coop.bash");
    std::fs::write(&f, stdout(&coop(&["completion", "bash"]))).unwrap();
    let o = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(o.status.success(), "bash -n: {}", stderr(&o));
    let o = coop(&["completion", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn make_install_and_uninstall_with_destdir() {
    for tool in ["make", "man"] {
        if !have(tool) {
            return skip(
                "make_install_and_uninstall_with_destdir",
                &format!("needs {tool} (apt-get install make man-db)"),
                "COOP_NO_SKIP",
            );
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let make = |target: &str| {
        let o = Command::new("make")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg(target)
            .arg(format!("DESTDIR={}", dest.display()))
            .arg("PREFIX=/usr")
            .arg(format!("COOP={}", coop_bin()))
            .arg(format!("OUT={}", tmp.path().join("out").display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "make {target}: {}", stderr(&o));
    };
    make("install");
    let usr = dest.join("usr");
    let mut want = vec![
        "bin/coop".to_string(),
        "share/man/man1/coop.1".into(),
        "share/bash-completion/completions/coop".into(),
        "share/zsh/site-functions/_coop".into(),
        "share/fish/vendor_completions.d/coop.fish".into(),
        "share/coop/examples/hooks.d/50-record.json".into(),
        "share/coop/hooks/record-state.sh".into(),
        "share/coop/contrib/containerd/config.toml".into(),
        "share/coop/contrib/kubernetes/runtimeclass.yaml".into(),
        "share/coop/contrib/podman/containers.conf".into(),
    ];
    for verb in [
        "create",
        "start",
        "run",
        "state",
        "list",
        "kill",
        "pause",
        "resume",
        "ps",
        "update",
        "events",
        "exec",
        "delete",
        "spec",
        "features",
        "completion",
    ] {
        want.push(format!("share/man/man1/coop-{verb}.1"));
    }
    for f in &want {
        assert!(usr.join(f).is_file(), "make install left no {f}");
    }
    // The installed binary is the one given, and runs.
    let o = Command::new(usr.join("bin/coop"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("coop version "));
    // coop-run(1) renders, with run's options and their help.
    let o = Command::new("man")
        .arg("-l")
        .arg(usr.join("share/man/man1/coop-run.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(o.status.success(), "man -l: {}", stderr(&o));
    let page = stdout(&o);
    for word in [
        "coop-run",
        "--detach",
        "--bundle",
        "--pid-file",
        "--console-socket",
    ] {
        assert!(page.contains(word), "coop-run(1) has no {word}:\n{page}");
    }
    make("uninstall");
    let left: Vec<_> = want.iter().filter(|f| usr.join(f).exists()).collect();
    assert!(left.is_empty(), "make uninstall left {left:?}");
    assert!(!Path::new(&usr.join("share/coop")).exists());
}
