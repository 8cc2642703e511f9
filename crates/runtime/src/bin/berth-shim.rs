//! `berth-shim <bundle>`: see `berth_runtime::shim`.
fn main() {
    std::process::exit(berth_runtime::shim::main());
}
