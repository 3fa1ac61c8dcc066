//! The shared library under test.
//!
//! `cargo test` does not build a `cdylib` for the integration tests of its own crate (they can
//! only link an rlib), so a test that needs `libchangetrack.so` asks cargo for it: one
//! `cargo build --lib` of this package, fresh after any change, whose artifact path comes from
//! cargo's JSON messages. (Looking for a `.so` left by an earlier build would test stale code,
//! or fail on a clean target directory.)

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the freshly built `libchangetrack.so`.
pub fn lib_path() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--lib",
                "--message-format=json-render-diagnostics",
                "-p",
            ])
            .arg(env!("CARGO_PKG_NAME"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build of the C library failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\""))
            .flat_map(|l| {
                l.split('"')
                    .filter(|p| p.ends_with("libchangetrack.so"))
                    .map(PathBuf::from)
                    .collect::<Vec<_>>()
            })
            .last()
            .expect("cargo reported no libchangetrack.so")
    })
    .clone()
}

/// The directory holding it.
pub fn lib_dir() -> PathBuf {
    lib_path()
        .parent()
        .expect("the library is in a directory")
        .to_path_buf()
}
