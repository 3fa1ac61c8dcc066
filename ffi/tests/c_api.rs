//! Builds the C tests (`tests/c/*.c`) against libchangetrack with `-Wall -Wextra -Werror` and
//! runs them under AddressSanitizer + UndefinedBehaviorSanitizer, then under valgrind.
//! Needs gcc and valgrind; without them the test says SKIPPED, unless
//! `CHANGETRACK_REQUIRE_C_TESTS=1` (CI) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::lib_dir;

fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    (1..=3)
        .map(|n| {
            root.join(format!(
                "tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
            ))
        })
        .collect()
}

fn compile(out: &Path, extra: &[&str]) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let st = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"])
        .args(extra)
        .arg("-I")
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/test_api.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lchangetrack")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "gcc failed");
}

fn run(cmd: &mut Command, label: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{label}: {}\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!("{label}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

fn store_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-capi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn c_tests_pass_under_sanitizers_and_valgrind() {
    if !have("gcc") || !have("valgrind") {
        assert!(
            std::env::var_os("CHANGETRACK_REQUIRE_C_TESTS").is_none(),
            "gcc and valgrind are required"
        );
        eprintln!("SKIPPED: gcc or valgrind is not installed");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("ct-capi-bin-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let files = corpus();

    let asan = tmp.join("test_api_asan");
    compile(
        &asan,
        &[
            "-O1",
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ],
    );
    let dir = store_dir("asan");
    run(
        Command::new(&asan)
            .arg(&dir)
            .args(&files)
            .env(
                "ASAN_OPTIONS",
                "detect_leaks=1:abort_on_error=0:exitcode=86",
            )
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
        "ASan+UBSan",
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let plain = tmp.join("test_api");
    compile(&plain, &["-O0"]);
    let dir = store_dir("valgrind");
    run(
        Command::new("valgrind")
            .args([
                "--quiet",
                "--error-exitcode=87",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--show-leak-kinds=definite",
            ])
            .arg(&plain)
            .arg(&dir)
            .args(&files),
        "valgrind",
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&tmp).unwrap();
}
