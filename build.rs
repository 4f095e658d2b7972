//! Compiles the in-kernel fast path (bpf/fastpath.c) into OUT_DIR/fastpath.o with clang.
//!
//! The fast path is optional: without clang or the kernel and libbpf headers (Debian:
//! `apt-get install clang libbpf-dev linux-libc-dev`) the object is left empty, the build says
//! why in a warning, and `FastPath::load` reports that the fast path was not built.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/fastpath.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("fastpath.o");
    if let Err(why) = compile(&out) {
        println!("cargo:warning=the eBPF fast path was not built: {why}");
        fs::write(&out, b"").expect("cannot write OUT_DIR/fastpath.o");
    }
}

fn compile(out: &Path) -> Result<(), String> {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return Err(format!("it is Linux only (target OS {os})"));
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // The multiarch directory holds <asm/types.h>, which <linux/bpf.h> includes.
    let multiarch = [
        format!("/usr/include/{arch}-linux-{target_env}"),
        format!("/usr/include/{arch}-linux-gnu"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|dir| dir.join("asm/types.h").is_file())
    .ok_or_else(|| {
        format!("no <asm/types.h> under /usr/include/{arch}-linux-gnu (install linux-libc-dev)")
    })?;
    for (header, package) in [
        ("linux/bpf.h", "linux-libc-dev"),
        ("bpf/bpf_helpers.h", "libbpf-dev"),
    ] {
        if !Path::new("/usr/include").join(header).is_file() {
            return Err(format!("no <{header}> (install {package})"));
        }
    }
    let target = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| String::from("clang"));
    let output = Command::new(&clang)
        .args(["-g", "-O2", "-Wall", "-Werror", "-target", target, "-I"])
        .arg(&multiarch)
        .args(["-c", SOURCE, "-o"])
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run {clang}: {e} (install clang)"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().take(5).collect::<Vec<_>>().join(" | ");
        return Err(format!("{clang} failed: {first}"));
    }
    Ok(())
}
