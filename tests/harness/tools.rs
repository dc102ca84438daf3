//! The external programs some tests drive (grpcurl, HAProxy), found the
//! same way everywhere: `scripts/setup` installs them, `scripts/test` puts
//! them on `PATH`. A missing tool fails the test that needs it, naming the
//! command that installs it: never a silent skip.

use std::path::{Path, PathBuf};

/// Where `scripts/setup` links the tools it installs from PyPI.
fn setup_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin")
}

/// The path of `name`: the environment variable `env` if set, else the
/// first `name` on `PATH`, in `scripts/setup`'s tool folder or in
/// `/usr/sbin` (where Debian puts daemons such as HAProxy).
///
/// Panics, naming `scripts/test`, when there is none.
pub fn tool(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([setup_bin(), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run the tests with `scripts/test`, which installs it \
                 (scripts/setup), or set {env} to its path"
            )
        })
}

/// The Python of `scripts/setup`'s venv, which has the packages the tests'
/// Python scripts need (scripts/requirements.txt: h2 for the HTTP/2
/// attacks). `ZGC_PYTHON` overrides it.
///
/// Panics, naming `scripts/test`, when there is none.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ZGC_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = setup_bin().join("../venv/bin/python3");
    if venv.is_file() {
        return venv;
    }
    panic!(
        "scripts/setup's Python venv is missing: run the tests with `scripts/test`, which \
         makes it, or set ZGC_PYTHON to a python3 with scripts/requirements.txt installed"
    )
}
