//! The start-up check of `--exec`: its program must be an executable file, named by a path
//! (when it holds a `/`) or found on PATH the way the jobs' commands will be, so a typo or a
//! missing `chmod +x` is refused before the worker starts instead of failing every job.

use crate::error::{Error, Result};
use rustix::fs::Access;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The search path `execvp` uses when PATH is unset.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Why a file cannot be run as a program.
#[derive(Debug)]
enum Unusable {
    /// Nothing there (or a dangling link).
    Missing,
    /// A directory.
    Directory,
    /// No execute bit at all: the permission bits.
    NoExecuteBit(u32),
    /// Execute bits, but not for this user, or a `noexec` file system: the permission bits.
    NotForThisUser(u32),
    /// Its metadata cannot be read.
    Unreadable(std::io::Error),
}

/// Refuses a program that cannot be run, with the path, the reason and what to do.
pub(super) fn check(program: &str) -> Result<()> {
    check_with(program, std::env::var_os("PATH").as_deref())
}

/// [`check`] against the search path `path_var` (the value of PATH, `None` when unset).
fn check_with(program: &str, path_var: Option<&OsStr>) -> Result<()> {
    if program.contains('/') {
        return runnable(Path::new(program))
            .map_err(|why| refused(program, Path::new(program), &why));
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut first_unusable = None;
    for dir in std::env::split_paths(path_var) {
        // An empty entry means the current directory, as for `execvp`.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        match runnable(&candidate) {
            Ok(()) => return Ok(()),
            Err(Unusable::Missing) => {}
            Err(why) => {
                first_unusable.get_or_insert((candidate, why));
            }
        }
    }
    Err(match first_unusable {
        Some((found, why)) => refused(program, &found, &why),
        None => Error::Config(format!(
            "--exec program {program:?} is not found on PATH ({}): install it, or give its path",
            path_var.to_string_lossy()
        )),
    })
}

/// Whether `path` names a file this process may execute.
fn runnable(path: &Path) -> std::result::Result<(), Unusable> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return Err(Unusable::Missing);
        }
        Err(e) => return Err(Unusable::Unreadable(e)),
    };
    if meta.is_dir() {
        return Err(Unusable::Directory);
    }
    let mode = meta.permissions().mode() & 0o7777;
    match rustix::fs::access(path, Access::EXEC_OK) {
        Ok(()) => Ok(()),
        Err(_) if mode & 0o111 == 0 => Err(Unusable::NoExecuteBit(mode)),
        Err(_) => Err(Unusable::NotForThisUser(mode)),
    }
}

/// The refusal of `program` (as given), whose file is `path`, for `why`.
fn refused(program: &str, path: &Path, why: &Unusable) -> Error {
    let at = if Path::new(program) == path {
        format!("--exec program {program:?}")
    } else {
        format!(
            "--exec program {program:?} (found on PATH as {})",
            path.display()
        )
    };
    let shown = path.display();
    Error::Config(match why {
        Unusable::Missing => format!("{at} does not exist: give the path of an executable file"),
        Unusable::Directory => format!("{at} is a directory: give the path of an executable file"),
        Unusable::NoExecuteBit(mode) => format!(
            "{at} is not executable (mode {mode:o}): make it executable (chmod +x {shown}), \
             or name its interpreter (--exec 'sh {shown}')"
        ),
        Unusable::NotForThisUser(mode) => format!(
            "{at} is not executable by this user (mode {mode:o}, or its file system is mounted \
             noexec): run the worker as a user that may run it, or copy it elsewhere"
        ),
        Unusable::Unreadable(e) => {
            format!("{at} cannot be checked ({e}): make it and its directories readable")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// The message of a refused check.
    fn refusal(program: &str, path_var: &Path) -> String {
        match check_with(program, Some(path_var.as_os_str())) {
            Err(Error::Config(msg)) => msg,
            other => panic!("{program:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn a_program_is_refused_with_its_path_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        let shown = script.display().to_string();

        let msg = refusal(&shown, dir.path());
        assert!(msg.contains(&shown), "{msg}");
        assert!(msg.contains("not executable (mode 644)"), "{msg}");
        assert!(msg.contains(&format!("chmod +x {shown}")), "{msg}");

        let msg = refusal("job.sh", dir.path());
        assert!(msg.contains(&format!("found on PATH as {shown}")), "{msg}");

        let missing = dir.path().join("nope");
        let msg = refusal(missing.to_str().unwrap(), dir.path());
        assert!(msg.contains("does not exist"), "{msg}");
        let msg = refusal(&format!("{shown}/below"), dir.path());
        assert!(msg.contains("does not exist"), "{msg}");

        let msg = refusal(dir.path().to_str().unwrap(), dir.path());
        assert!(msg.contains("is a directory"), "{msg}");

        let msg = refusal("nope", dir.path());
        assert!(msg.contains("is not found on PATH"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    }

    #[test]
    fn an_executable_file_is_accepted_by_path_or_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let path_var =
            std::env::join_paths([dir.path().join("missing"), dir.path().into()]).unwrap();
        check_with(script.to_str().unwrap(), None).unwrap();
        check_with("job.sh", Some(&path_var)).unwrap();
        // A non-executable file earlier on PATH is skipped, as `execvp` skips it.
        let early = tempfile::tempdir().unwrap();
        fs::write(early.path().join("job.sh"), "").unwrap();
        let path_var = std::env::join_paths([early.path(), dir.path()]).unwrap();
        check_with("job.sh", Some(&path_var)).unwrap();
    }
}
