//! Docker's seccomp profiles: the embedded default profile (moby
//! `profiles/seccomp/default.json`, verbatim data) and the translation of any Docker-format
//! profile into the OCI `linux.seccomp` section, as moby's `profiles/seccomp.setupSeccomp`
//! does: the native architecture and its sub-architectures are selected from `archMap`, and
//! rules are kept or dropped according to their `includes` / `excludes` conditions
//! (capabilities held, architecture, minimum kernel version).
pub mod bpf;

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// moby's `profiles/seccomp/default.json`.
const DEFAULT_PROFILE: &str = include_str!("seccomp/default.json");

/// A Docker-format seccomp profile could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("decoding the seccomp profile")]
    Decode(#[source] serde_json::Error),
    #[error("seccomp profile rule has neither `name` nor `names`")]
    NoNames,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Go's `runtime.GOARCH` for this build (the names the profile's `arches` use).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" => "mips64",
        other => other,
    }
}

/// libseccomp's name of the native architecture.
fn native_arch() -> &'static str {
    match go_arch() {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "mips64" => "SCMP_ARCH_MIPS64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// `(major, minor)` of a kernel release string such as `6.18.0-1-amd64`.
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn running_kernel() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_kernel(&uts.release().to_string_lossy())
}

/// The OCI `linux.seccomp` object for Docker's default profile and a container whose
/// bounding set is `caps`.
pub fn default_profile(caps: &[String]) -> Value {
    // The embedded profile is a compile-time constant covered by the unit tests; it is
    // parsed once per process.
    static PARSED: std::sync::OnceLock<Option<Profile>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| serde_json::from_str(DEFAULT_PROFILE).ok())
        .as_ref()
        .and_then(|p| render_with(p, caps, go_arch(), running_kernel()).ok())
        .unwrap_or_else(|| json!({ "defaultAction": "SCMP_ACT_ERRNO" }))
}

/// Translates a Docker-format profile (JSON text) into the OCI `linux.seccomp` object.
pub fn render(profile: &str, caps: &[String]) -> Result<Value, SeccompError> {
    let p: Profile = serde_json::from_str(profile).map_err(SeccompError::Decode)?;
    render_with(&p, caps, go_arch(), running_kernel())
}

fn render_with(
    p: &Profile,
    caps: &[String],
    arch: &str,
    kernel: Option<(u32, u32)>,
) -> Result<Value, SeccompError> {
    let mut out = Map::new();
    out.insert("defaultAction".into(), json!(p.default_action));
    if let Some(e) = p.default_errno_ret {
        out.insert("defaultErrnoRet".into(), json!(e));
    }
    let mut arches = p.architectures.clone();
    let native = native_arch();
    for m in p.arch_map.iter().filter(|m| m.architecture == native) {
        arches.push(m.architecture.clone());
        arches.extend(m.sub_architectures.iter().flatten().cloned());
    }
    if !arches.is_empty() {
        out.insert("architectures".into(), json!(arches));
    }
    if !p.flags.is_empty() {
        out.insert("flags".into(), json!(p.flags));
    }
    if let Some(l) = &p.listener_path {
        out.insert("listenerPath".into(), json!(l));
    }
    if let Some(l) = &p.listener_metadata {
        out.insert("listenerMetadata".into(), json!(l));
    }
    let has = |c: &String| caps.contains(c);
    let mut syscalls = Vec::new();
    for r in &p.syscalls {
        let inc = &r.includes;
        let exc = &r.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.iter().all(has) {
            continue;
        }
        if let Some(min) = inc.min_kernel.as_deref().and_then(parse_kernel) {
            if kernel.is_some_and(|k| k < min) {
                continue;
            }
        }
        if exc.arches.iter().any(|a| a == arch) || exc.caps.iter().any(has) {
            continue;
        }
        let names: Vec<&String> = if r.names.is_empty() {
            r.name.iter().collect()
        } else {
            r.names.iter().collect()
        };
        if names.is_empty() {
            return Err(SeccompError::NoNames);
        }
        let mut rule = Map::new();
        rule.insert("names".into(), json!(names));
        rule.insert("action".into(), json!(r.action));
        if let Some(e) = r.errno_ret {
            rule.insert("errnoRet".into(), json!(e));
        }
        if let Some(args) = &r.args {
            rule.insert("args".into(), json!(args));
        }
        syscalls.push(Value::Object(rule));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
            })
            .collect()
    }

    fn default_caps() -> Vec<String> {
        crate::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn default_profile_for_default_caps() {
        let p: Profile = serde_json::from_str(DEFAULT_PROFILE).unwrap();
        let v = render_with(&p, &default_caps(), "amd64", Some((6, 18))).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        let n = names(&v);
        for s in [
            "read",
            "execve",
            "ptrace",
            "arch_prctl",
            "modify_ldt",
            "chroot",
            "clone",
            "clone3",
            "socket",
            "personality",
        ] {
            assert!(n.iter().any(|x| x == s), "{s} missing");
        }
        for s in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "bpf",
            "open_by_handle_at",
            "s390_runtime_instr",
            "set_tls",
        ] {
            assert!(!n.iter().any(|x| x == s), "{s} must be denied");
        }
        let rules = v["syscalls"].as_array().unwrap();
        let clone = rules
            .iter()
            .find(|r| r["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["index"], 0);
        let clone3 = rules
            .iter()
            .find(|r| r["names"] == json!(["clone3"]))
            .unwrap();
        assert_eq!(
            (clone3["action"].as_str(), clone3["errnoRet"].as_u64()),
            (Some("SCMP_ACT_ERRNO"), Some(38))
        );
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                v["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
    }

    #[test]
    fn caps_and_kernel_conditions() {
        let p: Profile = serde_json::from_str(DEFAULT_PROFILE).unwrap();
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let v = render_with(&p, &caps, "amd64", Some((4, 4))).unwrap();
        let n = names(&v);
        assert!(n.iter().any(|x| x == "mount") && n.iter().any(|x| x == "unshare"));
        // With CAP_SYS_ADMIN clone is unconditional and clone3 allowed, not ENOSYS.
        assert!(!v.to_string().contains("MASKED_EQ") && !v.to_string().contains("\"errnoRet\":38"));
        // ptrace needs kernel >= 4.8 without CAP_SYS_PTRACE.
        assert!(!n.iter().any(|x| x == "ptrace"));
    }

    #[test]
    fn custom_profile_with_single_names() {
        let v = render(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"chmod","action":"SCMP_ACT_ERRNO"}]}"#, &[]).unwrap();
        assert_eq!(v["syscalls"][0]["names"], json!(["chmod"]));
        assert!(render("{", &[]).is_err());
        assert!(matches!(
            render(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}"#,
                &[]
            ),
            Err(SeccompError::NoNames)
        ));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.0-1-cloud-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
