//! Test harness shared by every test binary, one concern a module: Redis servers, key names,
//! seeded states, reading state, waiting, in-process workers, processes of the binary.
#![allow(dead_code)]

pub mod cli;
pub mod inspect;
pub mod keys;
pub mod known;
pub mod lua;
pub mod process;
pub mod readme;
pub mod scene;
pub mod seed;
pub mod server;
pub mod wait;
pub mod workers;
