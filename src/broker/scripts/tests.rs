//! The assembler on made-up files, and the embedded scripts against `lua/`.

use super::Scripts;
use super::assemble::{INCLUDE, assemble, assemble_dir};
use std::collections::HashMap;
use std::path::Path;

/// Assembles `name` from in-memory `files`.
fn assemble_from(files: &[(&str, &str)], name: &str) -> Result<String, String> {
    let files: HashMap<&str, &str> = files.iter().copied().collect();
    assemble(name, &mut |path| files.get(path).map(|s| s.to_string()))
}

fn lua_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lua"))
}

#[test]
fn includes_expand_in_place_each_fragment_once() {
    let files = [
        (
            "s.lua",
            "-- header\n--#include lib/b.lua\n--#include lib/a.lua\nreturn b()\n",
        ),
        ("lib/a.lua", "local function a() return 1 end\n"),
        (
            "lib/b.lua",
            "--#include lib/a.lua\nlocal function b() return a() end",
        ),
    ];
    assert_eq!(
        assemble_from(&files, "s.lua").unwrap(),
        "-- header\nlocal function a() return 1 end\nlocal function b() return a() end\n\
         return b()\n"
    );
}

#[test]
fn an_unknown_include_names_the_file_and_line() {
    let files = [("s.lua", "-- header\n--#include lib/nope.lua\n")];
    let error = assemble_from(&files, "s.lua").unwrap_err();
    assert_eq!(
        error,
        "lua/s.lua:2: unknown include `lib/nope.lua` (no lua/lib/nope.lua)"
    );
    let nested = [
        ("s.lua", "--#include lib/a.lua\n"),
        ("lib/a.lua", "-- a\n\n--#include lib/gone.lua\n"),
    ];
    let error = assemble_from(&nested, "s.lua").unwrap_err();
    assert!(error.starts_with("lua/lib/a.lua:3: unknown include `lib/gone.lua`"));
}

#[test]
fn an_include_outside_lib_is_refused() {
    for line in [
        "--#include ../Cargo.toml",
        "--#include lib/",
        "--#include other.lua",
    ] {
        let text = format!("{line}\n");
        let error = assemble_from(&[("s.lua", &text), ("other.lua", "")], "s.lua").unwrap_err();
        assert!(error.starts_with("lua/s.lua:1: "), "{error}");
        assert!(error.contains("is not a fragment"), "{error}");
    }
}

#[test]
fn the_crate_embeds_the_assembled_scripts() {
    for (name, lua) in Scripts::new().all() {
        let file = format!("{name}.lua");
        assert_eq!(
            lua.source(),
            assemble_dir(lua_dir(), &file).unwrap(),
            "{name}"
        );
        assert!(!lua.source().contains(INCLUDE), "{name} keeps an include");
        // The copied blocks live in lua/lib/ only: one clock, one ownership check per script.
        assert!(
            lua.source().matches("redis.call('TIME')").count() <= 1,
            "{name}"
        );
        assert!(lua.source().matches("eid, eid, 1)").count() <= 1, "{name}");
    }
}

#[test]
fn every_script_of_lua_is_embedded() {
    let mut files: Vec<String> = std::fs::read_dir(lua_dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".lua").map(str::to_string))
        .collect();
    files.sort();
    let mut embedded: Vec<String> = Scripts::new()
        .all()
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    embedded.sort();
    assert_eq!(files, embedded);
}

#[test]
fn every_fragment_is_used_and_says_what_it_defines() {
    let scripts = Scripts::new();
    for entry in std::fs::read_dir(lua_dir().join("lib")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let text = std::fs::read_to_string(lua_dir().join("lib").join(&name)).unwrap();
        assert!(text.starts_with(&format!("-- lib/{name}: ")), "{name}");
        assert!(text.contains("\n-- Defines "), "{name}");
        assert!(text.contains("\n-- Expects "), "{name}");
        let first_line = text.lines().next().unwrap();
        assert!(
            scripts
                .all()
                .iter()
                .any(|(_, lua)| lua.source().contains(first_line)),
            "lib/{name} is included nowhere"
        );
    }
}
