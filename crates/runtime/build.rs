//! Links `berth-shim` as a non-PIE executable. One shim runs per container, so its memory
//! is multiplied: in a PIE build the ~450 KiB `.data.rel.ro` segment is relocated at start
//! and becomes private dirty memory in every shim; without PIE the linker resolves those
//! relocations and the pages stay clean, shared file pages (≈ −450 KiB PSS per shim).
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
