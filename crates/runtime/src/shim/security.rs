//! The container's seccomp filter from a precompiled program instead of libseccomp in
//! every init (see `crate::seccomp::bpf`), with libcontainer's semantics kept.
//!
//! libcontainer (0.7) compiles `linux.seccomp` inside the init process and, without
//! `noNewPrivileges`, loads it right before dropping to `process.capabilities` (loading a
//! filter needs CAP_SYS_ADMIN or no_new_privs). It offers no hook between those two steps;
//! the executor's `validate` is the first code of ours that runs in the init, after the
//! drop and still before the init reports ready. So the shim hands libcontainer a copy of
//! the spec (`<bundle>/libcontainer/config.json`) without `linux.seccomp` and, when the
//! container's capabilities lack CAP_SYS_ADMIN and no_new_privs is off, with CAP_SYS_ADMIN
//! (and CAP_SETPCAP, which the final bounding-set drop needs) added to the bounding,
//! effective and permitted sets it names. In `validate` the
//! executor ([`Deferred::apply`]) loads the cached program with `seccomp(2)`, then drops
//! to the container's real capabilities with libcontainer's own `drop_privileges` — the
//! order libcontainer uses (filter, then capabilities) — before anything of the workload
//! runs. A failure fails the create, as libcontainer's own load would. Exec processes go
//! through the same executor (the tenant builder reads the same copy of the spec).
//! Profiles with user notification keep libcontainer's path unchanged.
use std::path::Path;

use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp};
use serde_json::Value;

use crate::seccomp::bpf::{self, Program};

const SYS_ADMIN: &str = "CAP_SYS_ADMIN";
const SETPCAP: &str = "CAP_SETPCAP";

/// What the executor applies in the init process before the workload runs.
#[derive(Debug, Clone)]
pub struct Deferred {
    program: Program,
    /// The container's capabilities, when the spec given to libcontainer widened them.
    restore_caps: Option<LinuxCapabilities>,
}

impl Deferred {
    /// Runs in the container's init (or exec) process, from the executor's `validate`.
    pub fn apply(&self) -> Result<(), String> {
        bpf::load(&self.program).map_err(|e| format!("loading the seccomp filter: {e}"))?;
        if let Some(caps) = &self.restore_caps {
            let sys = libcontainer::syscall::syscall::create_syscall();
            libcontainer::capabilities::drop_privileges(caps, sys.as_ref())
                .map_err(|e| format!("dropping capabilities: {e}"))?;
        }
        Ok(())
    }
}

/// Rewrites `spec` (config.json) into the spec for libcontainer when its seccomp section
/// can be precompiled; `cache` is the program cache directory. `None` leaves `spec` alone
/// (no seccomp, user notification, or anything libcontainer should report itself).
pub fn prepare(spec: &mut Value, cache: &Path) -> Option<Deferred> {
    let section = spec.get("linux")?.get("seccomp")?;
    let s: LinuxSeccomp = serde_json::from_value(section.clone()).ok()?;
    if !bpf::precompilable(&s) {
        return None;
    }
    let program = match bpf::cached(cache, &s) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "precompiling seccomp; libcontainer compiles it");
            return None;
        }
    };
    let process = spec.get("process")?;
    let nnp = process.get("noNewPrivileges").and_then(Value::as_bool) == Some(true);
    let caps_value = process.get("capabilities").cloned();
    let caps: Option<LinuxCapabilities> = match &caps_value {
        Some(v) => Some(serde_json::from_value(v.clone()).ok()?),
        None => None,
    };
    let mut widened = false;
    if !nnp {
        if let Some(sets) = spec["process"]["capabilities"].as_object_mut() {
            let missing = |sets: &serde_json::Map<String, Value>, cap: &str| {
                ["bounding", "effective", "permitted"].iter().any(|set| {
                    sets.get(*set)
                        .and_then(Value::as_array)
                        .is_some_and(|l| !l.iter().any(|c| c == cap))
                })
            };
            if missing(sets, SYS_ADMIN) {
                widened = true;
                // Loading the filter needs CAP_SYS_ADMIN; the drop to the real sets after
                // it needs CAP_SETPCAP (PR_CAPBSET_DROP), so both, when absent.
                for cap in [SYS_ADMIN, SETPCAP] {
                    for set in ["bounding", "effective", "permitted"] {
                        if let Some(list) = sets.get_mut(set).and_then(Value::as_array_mut) {
                            if !list.iter().any(|c| c == cap) {
                                list.push(Value::from(cap));
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    Some(Deferred {
        program,
        restore_caps: if widened { caps } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(nnp: bool, caps: &[&str]) -> Value {
        let mut v = json!({
            "process": {"capabilities": {"bounding": caps, "effective": caps, "permitted": caps}},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}},
        });
        if nnp {
            v["process"]["noNewPrivileges"] = json!(true);
        }
        v
    }

    #[test]
    fn widens_only_what_loading_needs() {
        let d = tempfile::tempdir().unwrap();
        let mut v = spec(false, &["CAP_CHOWN"]);
        let def = prepare(&mut v, d.path()).unwrap();
        assert!(v["linux"].get("seccomp").is_none());
        assert_eq!(
            v["process"]["capabilities"]["effective"],
            json!(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETPCAP"])
        );
        let restore = def.restore_caps.unwrap();
        assert_eq!(restore.effective().as_ref().unwrap().len(), 1);

        // no_new_privs: loading needs no capability.
        let mut v = spec(true, &["CAP_CHOWN"]);
        let def = prepare(&mut v, d.path()).unwrap();
        assert!(def.restore_caps.is_none());
        assert_eq!(
            v["process"]["capabilities"]["effective"],
            json!(["CAP_CHOWN"])
        );

        // Already holding CAP_SYS_ADMIN: nothing to widen.
        let mut v = spec(false, &["CAP_SYS_ADMIN"]);
        assert!(prepare(&mut v, d.path()).unwrap().restore_caps.is_none());
    }

    #[test]
    fn leaves_other_specs_alone() {
        let d = tempfile::tempdir().unwrap();
        let mut v = json!({"process": {}, "linux": {}});
        assert!(prepare(&mut v, d.path()).is_none());
        let mut v = spec(false, &[]);
        v["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_NOTIFY");
        v["linux"]["seccomp"]["listenerPath"] = json!("/run/x.sock");
        let before = v.clone();
        assert!(prepare(&mut v, d.path()).is_none());
        assert_eq!(v, before);
    }
}
