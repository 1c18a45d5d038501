//! Assembly of the Lua scripts of `lua/`: each line `--#include lib/NAME.lua` is replaced by
//! that fragment of `lua/lib/`, itself assembled, so the scripts share one copy of each block.
//! A fragment is expanded at its first include in a script; later includes of it (a fragment
//! that another one includes too) expand to nothing.
//!
//! One piece of code for every reader of `lua/`: `build.rs` writes the assembled scripts the
//! crate embeds, and the contract tests load them through it, so both run the same text. It
//! depends on `std` only, as `build.rs` compiles it on its own.

use std::path::Path;

/// The start of an include line; the rest of the line names a fragment of `lua/lib/`.
pub(crate) const INCLUDE: &str = "--#include ";

/// Assembles script `name` (a path relative to `lua/`, as `enqueue.lua`), reading each file
/// with `load` (a path relative to `lua/` to its text, `None` when there is no such file).
/// The error names the file and line of a bad include.
pub(crate) fn assemble(
    name: &str,
    load: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let text = load(name).ok_or_else(|| format!("lua/{name}: no such script"))?;
    let mut out = String::with_capacity(text.len());
    expand(name, &text, load, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// [`assemble`] reading from directory `lua`.
pub(crate) fn assemble_dir(lua: &Path, name: &str) -> Result<String, String> {
    assemble(name, &mut |path| {
        std::fs::read_to_string(lua.join(path)).ok()
    })
}

/// Appends `text` (file `name`) to `out` with its includes expanded; `seen` lists the files
/// expanded so far.
fn expand(
    name: &str,
    text: &str,
    load: &mut dyn FnMut(&str) -> Option<String>,
    seen: &mut Vec<String>,
    out: &mut String,
) -> Result<(), String> {
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let Some(include) = line.strip_prefix(INCLUDE) else {
            out.push_str(line);
            continue;
        };
        let at = || format!("lua/{name}:{}", n + 1);
        let fragment = include.trim();
        if !is_fragment(fragment) {
            return Err(format!(
                "{}: `{}` is not a fragment (lib/NAME.lua, NAME in a-z, 0-9, _)",
                at(),
                line.trim_end()
            ));
        }
        if seen.iter().any(|s| s == fragment) {
            continue;
        }
        let body = load(fragment)
            .ok_or_else(|| format!("{}: unknown include `{fragment}` (no lua/{fragment})", at()))?;
        seen.push(fragment.to_string());
        expand(fragment, &body, load, seen, out)?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(())
}

/// Whether `path` names a fragment: `lib/NAME.lua`, NAME of lowercase letters, digits and `_`.
fn is_fragment(path: &str) -> bool {
    path.strip_prefix("lib/")
        .and_then(|p| p.strip_suffix(".lua"))
        .is_some_and(|stem| {
            !stem.is_empty()
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}
