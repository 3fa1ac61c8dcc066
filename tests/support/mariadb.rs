//! A private, throw-away MariaDB server for tests: its own data directory, a free port on
//! 127.0.0.1 and a socket in a temporary directory; stopped by pid (also when dropped).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    // Bind port 0 on loopback and take what the kernel gave (closed again before the server
    // binds it; a clash is retried by the caller's start-up check).
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn which(prog: &str, fallback: &str) -> String {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(prog);
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    fallback.to_owned()
}

impl MariaDb {
    /// Whether the server programs are installed.
    pub fn available() -> bool {
        Path::new(&which("mariadbd", "/usr/sbin/mariadbd")).exists()
            && Path::new(&which("mariadb-install-db", "/usr/bin/mariadb-install-db")).exists()
    }

    /// Whether a test that needs a server can run: true when the server programs are
    /// installed; otherwise the test is reported SKIPPED, or fails when
    /// `CHANGETRACK_REQUIRE_SERVERS` is set (CI).
    pub fn required(test: &str) -> bool {
        if Self::available() {
            return true;
        }
        assert!(
            std::env::var_os("CHANGETRACK_REQUIRE_SERVERS").is_none(),
            "{test}: MariaDB is required (CHANGETRACK_REQUIRE_SERVERS) but not installed"
        );
        eprintln!("SKIPPED: {test} (mariadbd is not installed)");
        false
    }

    /// Initialises a data directory and starts the server with ROW binlogs; `extra` are more
    /// server options (e.g. `--binlog-row-metadata=MINIMAL`).
    pub fn start(name: &str, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("ct-mdb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let install = || {
            let _ = std::fs::remove_dir_all(dir.join("data"));
            Command::new(which("mariadb-install-db", "/usr/bin/mariadb-install-db"))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.join("data").display()))
                .arg(format!("--user={user}"))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                .output()
                .expect("run mariadb-install-db")
        };
        // Two tests initialising at once on a loaded machine has failed once: retry.
        let mut out = install();
        for _ in 0..2 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            out = install();
        }
        assert!(
            out.status.success(),
            "mariadb-install-db: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m = Self {
            dir,
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        m.launch();
        m
    }

    fn launch(&mut self) {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let d = &self.dir;
        let child = Command::new(which("mariadbd", "/usr/sbin/mariadbd"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("mysqld.err").display()))
            .arg(format!("--tmpdir={}", d.display()))
            .arg(format!("--user={user}"))
            .arg(format!(
                "--log-bin={}",
                d.join("data/mariadb-bin").display()
            ))
            .args([
                "--server-id=1",
                "--binlog-format=ROW",
                "--binlog-row-image=FULL",
                "--binlog-row-metadata=FULL",
                "--binlog-checksum=CRC32",
                "--max-binlog-size=1048576",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = std::fs::read_to_string(d.join("mysqld.err")).unwrap_or_default();
                    panic!("mariadbd exited during start-up ({st}): {log}");
                }
            }
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "mariadbd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(which("mariadb", "/usr/bin/mariadb"))
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs SQL as root over the socket; panics on an error.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"))
    }

    /// Runs a SQL script file as root (utf8mb4 client); panics on an error.
    pub fn sql_file(&self, path: &Path) {
        let out = Command::new(which("mariadb", "/usr/bin/mariadb"))
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .args(["-uroot", "--default-character-set=utf8mb4"])
            .stdin(std::fs::File::open(path).expect("open SQL script"))
            .output()
            .expect("run mariadb");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server by pid (SIGTERM, then SIGKILL after 30 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops and starts the server again (same data, same port).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// `mysql://USER:PASS@127.0.0.1:PORT`.
    pub fn url(&self, user: &str, pass: &str) -> String {
        format!("mysql://{user}:{pass}@127.0.0.1:{}", self.port)
    }

    /// The binlog files, in order.
    pub fn binlogs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("data"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("mariadb-bin.") && !n.ends_with(".index"))
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
