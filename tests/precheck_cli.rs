//! Issue 13, item 11: `precheck` as a user runs it. Its own exit code (8) when an item fails,
//! 6 for a wrong password (as `ingest`), GRANT fixes for the account's real `user@host`, plain
//! server errors, and plain words for a peer that is not a MySQL server and for `--tls` against
//! a server without TLS. The server tests start their own MariaDB on 127.0.0.1 (skipped when it
//! is not installed, unless CHANGETRACK_REQUIRE_SERVERS is set).

#[path = "support/mariadb.rs"]
mod mariadb;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mariadb::MariaDb;

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const PW: &str = "Repl_pass1";

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .env_remove("CHANGETRACK_SOURCE_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run changetrack")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn server_or_skip(name: &str) -> Option<MariaDb> {
    MariaDb::required(name).then(|| MariaDb::start(name, &[]))
}

/// A TCP listener on 127.0.0.1 that accepts connections and answers each with `greeting`
/// (nothing when empty), then keeps it open for a while.
fn fake_peer(greeting: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = conn;
                let _ = c.write_all(greeting);
                std::thread::sleep(Duration::from_secs(20));
            });
        }
    });
    port
}

#[test]
fn a_peer_that_is_not_mysql_is_named_plainly_and_quickly() {
    for (greeting, why) in [
        (&b""[..], "sent nothing"),
        (
            &b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"[..],
            "not a MySQL greeting",
        ),
        (
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            "not a MySQL greeting",
        ),
    ] {
        let port = fake_peer(greeting);
        let t0 = Instant::now();
        let out = cli(&[
            "precheck",
            "--source",
            &format!("mysql://repl:{PW}@127.0.0.1:{port}"),
        ]);
        let took = t0.elapsed();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(8), "{all}");
        assert!(
            all.contains(&format!(
                "127.0.0.1:{port} did not answer as a MySQL server"
            )) && all.contains(why),
            "{all}"
        );
        assert!(
            !all.contains("CodecError") && !all.contains("os error"),
            "{all}"
        );
        assert!(took < Duration::from_secs(4), "took {took:?}: {all}");
    }
}

#[test]
fn precheck_exit_codes_fixes_and_messages() {
    let Some(m) = server_or_skip("precheck-cli") else {
        return;
    };
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE USER loc@'127.0.0.1' IDENTIFIED BY '{PW}';"
    ));
    // Everything passes: exit 0.
    let out = cli(&["precheck", "--source", &m.url("repl", PW)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // An account without privileges: exit 8 (not 2, bad usage), a GRANT for its real
    // user@host, and the start-position item in plain words.
    let out = cli(&["precheck", "--source", &m.url("loc", PW)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(8), "{stdout}{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("precheck item(s) failed"));
    assert!(!stdout.contains("MySqlError"), "{stdout}");
    let start = stdout
        .lines()
        .find(|l| l.contains("the start position is still on the server"))
        .unwrap();
    assert!(
        start.starts_with("FAIL") && start.contains("ERROR 1227"),
        "{stdout}"
    );
    let grant = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("fix: GRANT"))
        .unwrap_or_else(|| panic!("no GRANT fix in {stdout}"));
    assert!(grant.contains("'loc'@'127.0.0.1'"), "{grant}");
    assert!(!grant.contains("'%'"), "{grant}");
    // The suggested statements work, and then the precheck passes.
    let statements = grant.trim_start().trim_start_matches("fix: ");
    m.sql(statements);
    let out = cli(&["precheck", "--source", &m.url("loc", PW)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A wrong password: exit 6 from precheck, as from ingest (which creates no store).
    let bad = m.url("repl", "Wrong_pass9");
    let out = cli(&["precheck", "--source", &bad]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stdout));
    let store = std::env::temp_dir().join(format!("ct-precheck-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let out = cli(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--source",
        &bad,
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(!store.exists());

    // --tls against a server without TLS: said plainly.
    let out = cli(&["precheck", "--source", &m.url("repl", PW), "--tls"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(8), "{stdout}");
    assert!(stdout.contains("does not offer TLS"), "{stdout}");
    assert!(stdout.contains("without --tls"), "{stdout}");
    assert!(!stdout.contains("check the host, port"), "{stdout}");
}
