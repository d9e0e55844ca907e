//! Puts memory.x, and the empty device.x that cortex-m-rt's `device`
//! feature includes (src/vectors.rs holds the interrupt table), where the
//! linker finds them.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("memory.x is copied");
    std::fs::write(
        out.join("device.x"),
        "/* Interrupt handlers: none besides DefaultHandler (src/vectors.rs). */\n",
    )
    .expect("device.x is written");
    println!("cargo:rustc-link-search={}", out.display());
    // Only memory.x: cargo reruns a build script whose source changed by
    // itself. Naming "build.rs" here broke the firmware node's image, which
    // shares this script from ../firmware: its own directory has no
    // build.rs, so the missing file made every build rerun the script and
    // relink the image.
    println!("cargo:rerun-if-changed=memory.x");
}
