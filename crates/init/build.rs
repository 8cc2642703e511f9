//! Compiles `init/main.rs` into a static executable and leaves it in `OUT_DIR` for
//! `include_bytes!`. It runs inside containers whose root has no libc (busybox, scratch
//! images), so it must be linked statically: a plain `[[bin]]` would inherit the workspace's
//! dynamic linking, hence this direct `rustc` call with `+crt-static` (std only, no crates).
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join("init/main.rs");
    let bin = out.join("berth-init");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "berth_init",
            "--target",
            &target,
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "opt-level=s"])
        .args(["-C", "panic=abort", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running rustc for berth-init");
    assert!(status.success(), "building the static berth-init failed");
    println!("cargo:rerun-if-changed=init/main.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
