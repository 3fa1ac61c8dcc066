//! The committed header equals what cbindgen generates from the current source (the drift
//! check), using the `cbindgen` tool (`cargo install cbindgen`; .ci/run installs it). Without
//! the tool the test says SKIPPED, unless `CHANGETRACK_REQUIRE_C_TESTS=1` (CI).
//! `CHANGETRACK_UPDATE_HEADER=1 cargo test -p changetrack-ffi --test header` rewrites it.

use std::process::Command;

#[test]
fn the_committed_header_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = match Command::new("cbindgen")
        .current_dir(dir)
        .args(["--config", "cbindgen.toml", "--quiet"])
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var_os("CHANGETRACK_REQUIRE_C_TESTS").is_none(),
                "the cbindgen tool is required (cargo install cbindgen)"
            );
            eprintln!("SKIPPED: cbindgen is not installed");
            return;
        }
    };
    assert!(
        out.status.success(),
        "cbindgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = dir.join("include/changetrack.h");
    if std::env::var_os("CHANGETRACK_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with CHANGETRACK_UPDATE_HEADER=1 cargo test -p changetrack-ffi --test header",
        path.display()
    );
}
