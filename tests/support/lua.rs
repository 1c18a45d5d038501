//! The Lua scripts of `lua/`, loaded as the contract tests run them.

use redis::Script;

/// `lua/NAME.lua`, read from the source tree.
pub fn script(name: &str) -> Script {
    let path = format!("{}/lua/{name}.lua", env!("CARGO_MANIFEST_DIR"));
    Script::new(&std::fs::read_to_string(path).unwrap())
}
