//! Docker's security defaults as a process in the container sees them: the default seccomp
//! profile is in force (syscalls it denies fail, also in exec processes), the capability
//! sets are Docker's, and the profile's capability conditions hold (`--cap-add SYS_ADMIN`
//! allows `mount`). berth loads a precompiled copy of the filter; these checks pin that
//! down to what dockerd gives (`BERTH_E2E_REFERENCE=dockerd`).
use berth_e2e::*;

/// Docker's default capability set as the kernel prints it.
const DEFAULT_CAPS: &str = "00000000a80425fb";

fn status_of(d: &Daemon, args: &[&str]) -> std::collections::HashMap<String, String> {
    let o = d.docker(args);
    assert_eq!(o.code, 0, "{args:?}: {o:?}");
    o.stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn status_cmd() -> Vec<&'static str> {
    vec![
        "grep",
        "-E",
        "^(Cap|NoNewPrivs|Seccomp)",
        "/proc/self/status",
    ]
}

fn run_status(d: &Daemon, opts: &[&str]) -> std::collections::HashMap<String, String> {
    let mut args = run_args(&["--rm"]);
    args.extend_from_slice(opts);
    args.push("busybox");
    args.extend(status_cmd());
    status_of(d, &args)
}

fn run_sh(d: &Daemon, opts: &[&str], script: &str) -> Out {
    let mut args = run_args(&["--rm"]);
    args.extend_from_slice(opts);
    args.extend(["busybox", "sh", "-c", script]);
    d.docker(&args)
}

#[test]
fn default_profile_and_capabilities() {
    let Some(d) = setup() else { return };
    let s = run_status(&d, &[]);
    assert_eq!(s["Seccomp"], "2", "{s:?}");
    assert_eq!(s["NoNewPrivs"], "0", "{s:?}");
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(s[set], DEFAULT_CAPS, "{set}: {s:?}");
    }
    assert_eq!(s["CapInh"], "0000000000000000", "{s:?}");
    assert_eq!(s["CapAmb"], "0000000000000000", "{s:?}");

    // unshare(CLONE_NEWUSER) needs no capability: only the profile denies it.
    let o = run_sh(&d, &[], "unshare -U true");
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    let o = run_sh(&d, &[], "mount -t tmpfs none /mnt");
    assert_ne!(o.code, 0, "{o:?}");
    // The filter's errno for a denied call is EPERM, not the kernel's ENOSYS.
    let o = run_sh(&d, &[], "mkdir /m && mount -t tmpfs none /m; echo rc=$?");
    assert!(
        o.stdout.contains("rc=") && !o.stdout.contains("rc=0"),
        "{o:?}"
    );

    // A non-root user: Docker's bounding set, nothing effective.
    let s = run_status(&d, &["-u", "65534"]);
    assert_eq!(s["Seccomp"], "2", "{s:?}");
    assert_eq!(s["CapBnd"], DEFAULT_CAPS, "{s:?}");
    assert_eq!(s["CapEff"], "0000000000000000", "{s:?}");
    assert_eq!(s["CapPrm"], "0000000000000000", "{s:?}");
    let o = run_sh(&d, &["-u", "65534"], "unshare -U true");
    assert_ne!(o.code, 0, "{o:?}");
}

#[test]
fn capability_conditions_and_no_new_privileges() {
    let Some(d) = setup() else { return };
    // With CAP_SYS_ADMIN Docker's profile allows mount (and unshare).
    let o = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN"],
        "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "mounted\n"), "{o:?}");
    let s = run_status(&d, &["--cap-add", "SYS_ADMIN"]);
    assert_eq!(s["Seccomp"], "2", "{s:?}");
    assert_eq!(s["CapEff"], "00000000a82425fb", "{s:?}");

    // Dropping a capability changes the sets, not the filter's presence.
    let s = run_status(&d, &["--cap-drop", "CHOWN"]);
    assert_eq!(s["Seccomp"], "2", "{s:?}");
    assert_eq!(s["CapEff"], "00000000a80425fa", "{s:?}");
    assert_eq!(s["CapBnd"], "00000000a80425fa", "{s:?}");

    let s = run_status(&d, &["--security-opt", "no-new-privileges"]);
    assert_eq!(
        (s["Seccomp"].as_str(), s["NoNewPrivs"].as_str()),
        ("2", "1"),
        "{s:?}"
    );
    assert_eq!(s["CapEff"], DEFAULT_CAPS, "{s:?}");
    let o = run_sh(
        &d,
        &["--security-opt", "no-new-privileges"],
        "unshare -U true",
    );
    assert_ne!(o.code, 0, "{o:?}");
}

#[test]
fn exec_processes_get_the_same_confinement() {
    let Some(d) = setup() else { return };
    let o = d.docker(&run_args(&["-d", "busybox", "sleep", "1000"]));
    assert_eq!(o.code, 0, "{o:?}");
    let id = o.stdout.trim().to_owned();
    let mut args = vec!["exec", id.as_str()];
    args.extend(status_cmd());
    let s = status_of(&d, &args);
    assert_eq!(s["Seccomp"], "2", "{s:?}");
    assert_eq!(s["CapEff"], DEFAULT_CAPS, "{s:?}");
    assert_eq!(s["CapBnd"], DEFAULT_CAPS, "{s:?}");
    let o = d.docker(&["exec", &id, "unshare", "-U", "true"]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    // Init itself, seen from the exec.
    let o = d.docker(&[
        "exec",
        &id,
        "grep",
        "-E",
        "^(Seccomp|CapEff):",
        "/proc/1/status",
    ]);
    assert!(
        o.stdout.contains("Seccomp:\t2") && o.stdout.contains(DEFAULT_CAPS),
        "{o:?}"
    );
    let o = d.docker(&["rm", "-f", &id]);
    assert_eq!(o.code, 0, "{o:?}");
}
