//! seccomp, compiled by coop itself (see compile.rs for the program's layout and how
//! overlapping rules resolve) and installed with seccomp(2) so that filter flags work.
pub mod bpf;
pub mod compile;

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u32,
}

impl Filter {
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.prog
    }
}

const SECCOMP_SET_MODE_FILTER: u32 = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Compile linux.seccomp; an invalid profile is an error naming the field.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let prog = compile::compile(s).context("linux.seccomp")?;
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    Ok(Filter { prog, flags })
}

/// Install the filter on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN.
pub fn install(f: &Filter) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: f.prog.len() as u16,
        filter: f.prog.as_ptr() as *mut _,
    };
    // SAFETY: fprog points at our program, which outlives the call; the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            f.flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("install the seccomp filter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bpf::{run, Data};
    use super::compile::compile;
    use oci_spec::runtime::LinuxSeccomp;

    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;

    fn prog(json: &str) -> Vec<libc::sock_filter> {
        compile(&serde_json::from_str::<LinuxSeccomp>(json).unwrap()).unwrap()
    }

    fn call(p: &[libc::sock_filter], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
        run(p, &Data { nr, arch, args })
    }

    #[test]
    fn default_and_plain_rules_per_arch() {
        let p = prog(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["getpid","read","nosuchcall"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["swapon"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        );
        assert_eq!(call(&p, X86_64, 39, [0; 6]), ALLOW); // getpid
        assert_eq!(call(&p, X86_64, 0, [0; 6]), ALLOW); // read
        assert_eq!(call(&p, X86_64, 167, [0; 6]), 0x0005_0026); // swapon -> ENOSYS
        assert_eq!(call(&p, X86_64, 1, [0; 6]), EPERM); // write: default, errno EPERM
        assert_eq!(call(&p, I386, 20, [0; 6]), ALLOW); // getpid on i386 is 20
        assert_eq!(call(&p, I386, 3, [0; 6]), ALLOW); // read on i386 is 3
                                                      // An architecture not listed, and x32 when not listed: killed.
        assert_eq!(call(&p, 0xc000_00b7, 39, [0; 6]), 0);
        assert_eq!(call(&p, X86_64, 0x4000_0000 | 39, [0; 6]), 0);
    }

    #[test]
    fn x32_when_listed() {
        let p = prog(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(call(&p, X86_64, 0x4000_0000 | 39, [0; 6]), ALLOW);
        assert_eq!(call(&p, X86_64, 0x4000_0000 | 40, [0; 6]), EPERM);
    }

    #[test]
    fn sixty_four_bit_comparisons() {
        let ops: [(&str, fn(u64, u64) -> bool); 6] = [
            ("SCMP_CMP_EQ", |a, v| a == v),
            ("SCMP_CMP_NE", |a, v| a != v),
            ("SCMP_CMP_LT", |a, v| a < v),
            ("SCMP_CMP_LE", |a, v| a <= v),
            ("SCMP_CMP_GT", |a, v| a > v),
            ("SCMP_CMP_GE", |a, v| a >= v),
        ];
        let values = [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0xffff_ffff_ffff_fffe,
            u64::MAX,
        ];
        for (op, f) in ops {
            for v in values {
                let p = prog(&format!(
                    r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"SCMP_ACT_ERRNO",
                        "args":[{{"index":2,"value":{v},"op":"{op}"}}]}}]}}"#
                ));
                for a in values {
                    let want = if f(a, v) { EPERM } else { ALLOW };
                    assert_eq!(
                        call(&p, X86_64, 39, [0, 0, a, 0, 0, 0]),
                        want,
                        "{a:#x} {op} {v:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn masked_eq_and_conjunction_and_precedence() {
        let p = prog(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":4294967295,"valueTwo":8,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":9,"op":"SCMP_CMP_EQ"},{"index":1,"value":15,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["getpid"],"action":"SCMP_ACT_TRAP","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(call(&p, X86_64, 135, [0x1_0000_0008, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, X86_64, 135, [9, 0, 0, 0, 0, 0]), ALLOW);
        // clone: both conditions (AND).
        assert_eq!(call(&p, X86_64, 56, [1, 2, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, X86_64, 56, [1, 3, 0, 0, 0, 0]), ALLOW);
        // kill: two conditions on one argument are alternatives (OR).
        assert_eq!(call(&p, X86_64, 62, [0, 9, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, X86_64, 62, [0, 15, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&p, X86_64, 62, [0, 1, 0, 0, 0, 0]), ALLOW);
        // getpid: the conditional rule is tried before the plain one.
        assert_eq!(call(&p, X86_64, 39, [7, 0, 0, 0, 0, 0]), 0x0003_0000);
        assert_eq!(call(&p, X86_64, 39, [1, 0, 0, 0, 0, 0]), 0x8000_0000);
    }

    #[test]
    fn bad_profiles_name_the_problem() {
        let bad = |json: &str| {
            let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
            format!("{:#}", compile(&s).unwrap_err())
        };
        assert!(bad(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("SCMP_ACT_NOTIFY"));
        assert!(bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#).contains("index 7"));
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#).is_err()
        );
    }

    #[test]
    fn podmans_profile_compiles_small_and_fast() {
        let Ok(data) = std::fs::read("/usr/share/containers/seccomp.json") else {
            eprintln!("no /usr/share/containers/seccomp.json here (containers-common): skipped");
            return;
        };
        let s: LinuxSeccomp = serde_json::from_slice(&data).unwrap();
        let t = std::time::Instant::now();
        let p = compile(&s).unwrap();
        eprintln!(
            "podman profile: {} instructions, compiled in {:?}",
            p.len(),
            t.elapsed()
        );
        assert!(p.len() < 4096, "{} instructions", p.len());
        // Everyday calls allowed, swapon not.
        for nr in [0, 1, 2, 3, 39, 56, 59, 231] {
            assert_eq!(call(&p, X86_64, nr, [0; 6]), ALLOW, "syscall {nr}");
        }
        assert_ne!(call(&p, X86_64, 167, [0; 6]), ALLOW);
    }
}
