//! Assembles the Lua scripts of `lua/` (their `--#include` lines expanded, see
//! `src/broker/scripts/assemble.rs`) into `OUT_DIR/lua/`, where `src/broker/scripts` embeds
//! them. A bad include stops the build with the file and line.

#[path = "src/broker/scripts/assemble.rs"]
mod assemble;

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/broker/scripts/assemble.rs");
    println!("cargo:rerun-if-changed=lua");
    let lua = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let lua = lua.join("lua");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("lua");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/lua");
    let mut names: Vec<String> = std::fs::read_dir(&lua)
        .expect("read lua/")
        .map(|entry| entry.expect("read lua/").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "lua"))
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_string()))
        .collect();
    names.sort();
    for name in names {
        match assemble::assemble_dir(&lua, &name) {
            Ok(text) => std::fs::write(out.join(&name), text).expect("write OUT_DIR/lua"),
            Err(error) => {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
        }
    }
}
