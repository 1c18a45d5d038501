//! The Lua scripts of `lua/`, loaded as the contract tests run them.

use redis::Script;

/// `lua/NAME.lua`, read from the source tree and assembled as the crate embeds it.
pub fn script(name: &str) -> Script {
    #[path = "../../src/broker/scripts/assemble.rs"]
    mod assemble;
    let lua = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    Script::new(&assemble::assemble_dir(&lua, &format!("{name}.lua")).unwrap())
}
