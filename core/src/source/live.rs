//! A live MySQL/MariaDB server as the source, connected as a replica (`COM_BINLOG_DUMP`).
//!
//! Events arrive through the `mysql` client crate's binlog stream on a network thread. Each one
//! is turned back into its wire bytes, with its original checksum, and goes through the same
//! framing (CRC32 verified) and [`Decoder`] as a binlog file. Positions are the server's:
//! checkpoint = `log_pos@file_index`, the same as when the server's files are read from disk.
//! So a store can switch between files and the live server, and resume is exact: ingestion
//! restarts from the stored `file:pos`, and `stored_through` drops what is stored already.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{BinlogRequest, Conn, Opts, OptsBuilder};

use crate::binlog::frame::{self, ChecksumAlg, Framed, RawEvent};
use crate::binlog::{BinlogOptions, Decoder};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::ingest::{IngestOptions, IngestProgress, IngestStats, RecordSource, StopFlag};
use crate::record::{ChangeRecord, Checkpoint, HistoryColumn};
use crate::store::{SourcePosition, Store};

/// Where streaming starts when the store holds no position yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StartPosition {
    /// The server's current position: only changes made from now on.
    #[default]
    Now,
    /// The oldest binlog the server still has.
    Earliest,
    /// A binlog file and position.
    FilePos(String, u64),
    /// A MariaDB GTID position (`domain-server-seq`, comma-separated per domain).
    Gtid(String),
}

impl std::str::FromStr for StartPosition {
    type Err = Error;

    /// `now`, `earliest`, `FILE:POS`, or a MariaDB GTID (`0-1-100`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "now" => return Ok(Self::Now),
            "earliest" => return Ok(Self::Earliest),
            _ => {}
        }
        if let Some((f, p)) = s.rsplit_once(':') {
            if let Ok(p) = p.parse::<u64>() {
                if !f.is_empty() {
                    return Ok(Self::FilePos(f.to_owned(), p));
                }
            }
        }
        if s.split(',')
            .all(|g| g.split('-').count() == 3 && g.split('-').all(|n| n.parse::<u64>().is_ok()))
        {
            return Ok(Self::Gtid(s.to_owned()));
        }
        Err(Error::invalid(format!(
            "bad start {s:?}: use now, earliest, FILE:POS or a MariaDB GTID (0-1-100)"
        )))
    }
}

/// Options of a live source.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The replica server id this connection registers with; unique among the server's
    /// replicas. Default: 0 (invalid: the caller picks one; the CLI derives one from the store
    /// path).
    pub server_id: u32,
    /// Where to start when the store holds no position. Default: now.
    pub start: StartPosition,
    /// Replication heartbeat period asked of the server (`MASTER_HEARTBEAT_PERIOD`).
    /// Default: 1 s.
    pub heartbeat: Duration,
    /// A read that waits longer than this (no event, no heartbeat) is a stalled connection:
    /// it is dropped and made again. Default: 5 s; at least twice `heartbeat`.
    pub read_timeout: Duration,
    /// Connection timeout. Default: 5 s.
    pub connect_timeout: Duration,
    /// Longest wait between reconnection attempts (the wait doubles from 100 ms). Default: 30 s.
    pub max_backoff: Duration,
    /// Give up after this many failed connection attempts in a row (each one is logged).
    /// Default: `None`, retry for as long as it takes, as a replica does.
    pub max_retries: Option<u32>,
    /// Binlog reading limits.
    pub binlog: BinlogOptions,
    /// TLS for the connection. Default: none (plain TCP).
    pub tls: Option<TlsOptions>,
}

/// TLS settings of a live source (rustls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of the CA(s) that signed the server's certificate. Default: the built-in web
    /// roots.
    pub ca: Option<std::path::PathBuf>,
    /// Accept any certificate and host name (encryption without authentication of the server;
    /// for testing only). Default: false.
    pub insecure: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            server_id: 0,
            start: StartPosition::Now,
            heartbeat: Duration::from_secs(1),
            read_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            binlog: BinlogOptions::default(),
            tls: None,
        }
    }
}

impl LiveOptions {
    fn validate(&self) -> Result<()> {
        if self.server_id == 0 {
            return Err(Error::invalid("a replica server id is 1 or more"));
        }
        if self.heartbeat < Duration::from_millis(1) || self.read_timeout < self.heartbeat * 2 {
            return Err(Error::invalid(
                "the read timeout is at least twice the heartbeat period",
            ));
        }
        Ok(())
    }
}

/// A source URL `mysql://USER[:PASS]@HOST[:PORT]`. Without a password in the URL it comes from
/// `CHANGETRACK_SOURCE_PASSWORD`. Its `Display` never shows the password.
#[derive(Clone)]
pub struct SourceUrl {
    opts: Opts,
}

impl std::fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceUrl({self})")
    }
}

impl std::fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mysql://{}@{}:{}",
            self.opts.get_user().unwrap_or(""),
            self.opts.get_ip_or_hostname(),
            self.opts.get_tcp_port()
        )
    }
}

impl std::str::FromStr for SourceUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let opts = Opts::from_url(s).map_err(|e| {
            // The URL may hold a password: never repeat it.
            Error::invalid(format!(
                "bad source URL ({}): use mysql://USER[:PASS]@HOST[:PORT]",
                e.to_string().split(':').next().unwrap_or("malformed")
            ))
        })?;
        let opts = match (
            opts.get_pass(),
            std::env::var("CHANGETRACK_SOURCE_PASSWORD"),
        ) {
            (None, Ok(p)) => Opts::from(OptsBuilder::from_opts(opts).pass(Some(p))),
            _ => opts,
        };
        Ok(Self { opts })
    }
}

/// A client error in plain words: `ERROR 1227 (42000): Access denied; ...` for a server
/// error, the message alone for the others (not the driver's `MySqlError { .. }` debug form).
fn plain(e: &mysql::Error) -> String {
    let io = |e: &std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "no answer in time (read timeout)".to_owned()
        }
        _ => e.to_string(),
    };
    match e {
        mysql::Error::MySqlError(m) => m.to_string(),
        mysql::Error::IoError(e) => io(e),
        mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(e)) => {
            io(e)
        }
        mysql::Error::CodecError(c) => c.to_string(),
        mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => {
            "the server does not offer TLS (it is not configured with a certificate)".to_owned()
        }
        mysql::Error::DriverError(d) => d.to_string(),
        other => {
            // `TlsError { .. }`, `UrlError { .. }`: the text inside.
            let t = other.to_string();
            match (t.find("{ "), t.strip_suffix(" }")) {
                (Some(i), Some(inner)) => inner[i + 2..].to_owned(),
                _ => t,
            }
        }
    }
}

fn db_err(context: &str, e: &mysql::Error) -> Error {
    let kind = match e {
        mysql::Error::MySqlError(m) if m.code == 1045 || m.code == 1044 => ErrorKind::Unauthorized,
        mysql::Error::MySqlError(m) if m.code == 1236 => ErrorKind::OutOfRange,
        mysql::Error::MySqlError(_) => ErrorKind::InvalidArgument,
        mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    Error::new(kind, format!("{context}: {}", plain(e)))
}

/// Whether a failed connection could be a peer that is not a MySQL server (as opposed to a
/// refusal, a server error or a TLS problem).
fn maybe_not_mysql(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::IoError(io) => !matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
        mysql::Error::CodecError(_) => true,
        mysql::Error::DriverError(d) => matches!(
            d,
            mysql::DriverError::PacketOutOfSync
                | mysql::DriverError::PacketTooLarge
                | mysql::DriverError::UnexpectedPacket
                | mysql::DriverError::UnsupportedProtocol(_)
                | mysql::DriverError::Protocol41NotSet
                | mysql::DriverError::CouldNotParseVersion
        ),
        _ => false,
    }
}

/// Opens a TCP connection to the source and reads the start of what it sends first: a MySQL
/// server sends its handshake (protocol 10) or an error packet at once. `Err` says, in plain
/// words, how the peer is not a MySQL server; `Ok` when it looks like one, or when it cannot
/// be reached at all (the client's own error says that better).
fn probe(url: &SourceUrl, opts: &LiveOptions) -> std::result::Result<(), String> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    if url.opts.get_socket().is_some() {
        return Ok(());
    }
    let host = url.opts.get_ip_or_hostname();
    let port = url.opts.get_tcp_port();
    let peer = format!("{host}:{port}");
    let Ok(addrs) = (host.as_ref(), port).to_socket_addrs() else {
        return Ok(());
    };
    let Some(mut sock) = addrs
        .into_iter()
        .find_map(|a| std::net::TcpStream::connect_timeout(&a, opts.connect_timeout).ok())
    else {
        return Ok(());
    };
    let wait = opts
        .connect_timeout
        .min(Duration::from_secs(2))
        .max(Duration::from_millis(100));
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 32];
    let mut have = 0;
    let mut closed = false;
    while have < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match sock.read(&mut buf[have..]) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let not = |why: String| Err(format!("{peer} did not answer as a MySQL server ({why})"));
    let shown = || {
        buf[..have]
            .iter()
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect::<String>()
    };
    if have >= 5 {
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], 0]);
        let (seq, first) = (buf[3], buf[4]);
        if seq == 0 && len > 0 && (first == 10 || first == 0xff) {
            return Ok(());
        }
        return not(format!("it sent \"{}\", not a MySQL greeting", shown()));
    }
    match (have, closed) {
        (0, true) => not("it closed the connection without a greeting".to_owned()),
        (0, false) => not(format!(
            "it sent nothing within {:.1} s",
            wait.as_secs_f64()
        )),
        _ => not(format!(
            "it sent only \"{}\"{}",
            shown(),
            if closed {
                " and closed the connection"
            } else {
                ""
            }
        )),
    }
}

fn connect(url: &SourceUrl, opts: &LiveOptions) -> Result<Conn> {
    let mut o = OptsBuilder::from_opts(url.opts.clone())
        .tcp_connect_timeout(Some(opts.connect_timeout))
        .read_timeout(Some(opts.read_timeout))
        .write_timeout(Some(opts.read_timeout));
    if let Some(t) = &opts.tls {
        let mut ssl = mysql::SslOpts::default()
            .with_danger_accept_invalid_certs(t.insecure)
            .with_danger_skip_domain_validation(t.insecure);
        if let Some(ca) = &t.ca {
            ssl = ssl.with_root_cert_path(Some(std::borrow::Cow::Owned(ca.clone())));
        }
        o = o.ssl_opts(Some(ssl));
    }
    Conn::new(o).map_err(|e| {
        if maybe_not_mysql(&e) {
            if let Err(why) = probe(url, opts) {
                return Error::new(ErrorKind::Io, format!("cannot connect to {url}: {why}"));
            }
        }
        db_err(&format!("cannot connect to {url}"), &e)
    })
}

/// [`connect`] on a helper thread, so that `stop` ends the wait at once (within 20 ms) even
/// while the connection attempt waits for its timeout. `None`: stopped.
fn connect_interruptible(
    url: &SourceUrl,
    opts: &LiveOptions,
    stop: Option<&StopFlag>,
) -> Option<Result<Conn>> {
    let Some(stop) = stop else {
        return Some(connect(url, opts));
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (u, o) = (url.clone(), opts.clone());
    let spawned = std::thread::Builder::new()
        .name("changetrack-connect".into())
        .spawn(move || {
            let _ = tx.send(connect(&u, &o));
        });
    if spawned.is_err() {
        return Some(connect(url, opts));
    }
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(r) => return Some(r),
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => return None,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Some(Err(Error::new(
                    ErrorKind::Internal,
                    "the connection thread ended",
                )))
            }
        }
    }
}

/// Sleeps `d`, or less when `stop` is set (checked every 20 ms). True when stopped.
fn sleep_unless_stopped(d: Duration, stop: Option<&StopFlag>) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Waits until the server at `url` accepts a connection: retries network failures with
/// backoff (100 ms, doubling up to `opts.max_backoff`), logging each one, at most
/// `opts.max_retries` times when set. `stop` ends the wait at once. Nothing is written
/// anywhere, so a caller can make its store only once the server answered.
///
/// Returns `Ok(true)` once connected, `Ok(false)` when `stop` was set first.
///
/// # Errors
/// `Unauthorized` for refused credentials, `Unsupported` for TLS the server does not offer,
/// `InvalidArgument` for another server refusal; `Io` once `max_retries` attempts failed.
pub fn wait_for_server(
    url: &SourceUrl,
    opts: &LiveOptions,
    stop: Option<&StopFlag>,
) -> Result<bool> {
    let mut backoff = Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        match connect_interruptible(url, opts, stop) {
            None => return Ok(false),
            Some(Ok(_)) => return Ok(true),
            Some(Err(e)) if e.kind() == ErrorKind::Io => {
                failures = failures.saturating_add(1);
                if opts.max_retries.is_some_and(|n| failures > n) {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("{e} (gave up after {failures} attempts, --max-retries)"),
                    ));
                }
                tracing::warn!(
                    "{e}; attempt {failures}{}, next in {backoff:?}",
                    opts.max_retries
                        .map_or_else(String::new, |n| format!(" of {}", n.saturating_add(1)))
                );
                if sleep_unless_stopped(backoff, stop) {
                    return Ok(false);
                }
                backoff = (backoff * 2).min(opts.max_backoff);
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

/// One precheck item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckItem {
    /// What is checked.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it (for a failed item).
    pub fix: String,
    /// For a failed item caused by an error: its kind (`Unauthorized` for refused
    /// credentials, `Io` for a network failure).
    pub error: Option<ErrorKind>,
}

/// The server's binlogs (`SHOW BINARY LOGS`): name and size.
fn binary_logs(conn: &mut Conn) -> Result<Vec<(String, u64)>> {
    conn.query_map("SHOW BINARY LOGS", |row: mysql::Row| {
        let name: String = row.get(0).unwrap_or_default();
        let size: u64 = row.get(1).unwrap_or_default();
        (name, size)
    })
    .map_err(|e| db_err("SHOW BINARY LOGS", &e))
}

/// The server's current binlog file and position.
fn current_position(conn: &mut Conn) -> Result<(String, u64)> {
    for q in [
        "SHOW BINARY LOG STATUS",
        "SHOW BINLOG STATUS",
        "SHOW MASTER STATUS",
    ] {
        if let Ok(Some(row)) = conn.query_first::<mysql::Row, _>(q) {
            let name: Option<String> = row.get(0);
            let pos: Option<u64> = row.get(1);
            if let (Some(n), Some(p)) = (name, pos) {
                return Ok((n, p));
            }
        }
    }
    Err(Error::new(
        ErrorKind::InvalidArgument,
        "the server reports no binlog position (is log_bin on?)",
    ))
}

fn variable(conn: &mut Conn, name: &str) -> Option<String> {
    conn.query_first::<mysql::Row, _>(format!("SELECT @@{name}"))
        .ok()
        .flatten()
        .and_then(|r| r.get::<Option<String>, _>(0).flatten())
}

/// Checks every requirement of streaming from `url` (spec §1) without starting it.
/// `resume`: the store's position, if any (it must still be on the server).
///
/// # Errors
/// Only for bad options; every server problem is a failed item.
pub fn precheck(
    url: &SourceUrl,
    opts: &LiveOptions,
    filter: &Filter,
    resume: Option<&SourcePosition>,
) -> Result<Vec<CheckItem>> {
    opts.validate()?;
    let mut items = Vec::new();
    let mut item = |name, passed, detail: String, fix: &str| {
        items.push(CheckItem {
            name,
            passed,
            detail,
            fix: if passed {
                String::new()
            } else {
                fix.to_owned()
            },
            error: None,
        });
    };
    // A peer that is not a MySQL server is told apart at once, not after a read timeout.
    if let Err(why) = probe(url, opts) {
        item(
            "connection and authentication",
            false,
            why,
            "check the host and port: they must be those of the MySQL/MariaDB server",
        );
        if let Some(i) = items.last_mut() {
            i.error = Some(ErrorKind::Io);
        }
        return Ok(items);
    }
    let mut conn = match connect(url, opts) {
        Ok(c) => {
            item(
                "connection and authentication",
                true,
                format!(
                    "connected to {url}{}",
                    if opts.tls.is_some() { " over TLS" } else { "" }
                ),
                "",
            );
            c
        }
        Err(e) => {
            let fix = match e.kind() {
                ErrorKind::Unauthorized => {
                    "check the user and password (and that the account may connect from this host)"
                }
                ErrorKind::Unsupported => {
                    "enable TLS on the server (ssl_cert and ssl_key), or connect without --tls"
                }
                _ => "check the host, port, user and password; the server must accept TCP connections from this machine",
            };
            item("connection and authentication", false, e.to_string(), fix);
            if let Some(i) = items.last_mut() {
                i.error = Some(e.kind());
            }
            return Ok(items);
        }
    };
    let version = variable(&mut conn, "version").unwrap_or_default();
    let mariadb = version.contains("MariaDB");
    // Privileges.
    let grants: Vec<String> = conn
        .query_map("SHOW GRANTS", |r: mysql::Row| {
            r.get::<String, _>(0)
                .unwrap_or_default()
                .to_ascii_uppercase()
        })
        .unwrap_or_default();
    let global = |p: &str| {
        grants
            .iter()
            .any(|g| g.contains(" ON *.*") && (g.contains("ALL PRIVILEGES") || g.contains(p)))
    };
    let repl_slave = global("REPLICATION SLAVE") || global("REPLICATION REPLICA");
    let repl_client = global("REPLICATION CLIENT") || global("BINLOG MONITOR") || global("SUPER");
    let select_on = |db: &str, table: Option<&str>| {
        global("SELECT")
            || grants.iter().any(|g| {
                let on_db = g.contains(&format!(" ON `{}`.*", db.to_ascii_uppercase()));
                let on_t = table.is_some_and(|t| {
                    g.contains(&format!(
                        " ON `{}`.`{}`",
                        db.to_ascii_uppercase(),
                        t.to_ascii_uppercase()
                    ))
                });
                (on_db || on_t) && (g.contains("SELECT") || g.contains("ALL PRIVILEGES"))
            })
    };
    let mut missing = Vec::new();
    if !repl_slave {
        missing.push("REPLICATION SLAVE".to_owned());
    }
    if !repl_client {
        missing.push("REPLICATION CLIENT".to_owned());
    }
    if filter.all || filter.databases.is_empty() && filter.tables.is_empty() {
        if !global("SELECT") {
            missing.push("SELECT ON *.*".to_owned());
        }
    } else {
        for d in &filter.databases {
            if !select_on(d, None) {
                missing.push(format!("SELECT ON `{d}`.*"));
            }
        }
        for (d, t) in &filter.tables {
            if !select_on(d, Some(t)) {
                missing.push(format!("SELECT ON `{d}`.`{t}`"));
            }
        }
    }
    // The account the server authenticated (its host part may be a pattern or `localhost`),
    // not the name in the URL.
    let account = conn
        .query_first::<String, _>("SELECT CURRENT_USER()")
        .ok()
        .flatten()
        .and_then(|a| {
            a.rsplit_once('@')
                .map(|(u, h)| (u.to_owned(), h.to_owned()))
        })
        .unwrap_or_else(|| {
            (
                url.opts.get_user().unwrap_or("USER").to_owned(),
                "%".to_owned(),
            )
        });
    item(
        "privileges: REPLICATION SLAVE, REPLICATION CLIENT, SELECT on the tracked objects",
        missing.is_empty(),
        if missing.is_empty() {
            "granted".to_owned()
        } else {
            format!("missing: {}", missing.join(", "))
        },
        &grant_fix(&missing, &account.0, &account.1),
    );
    let v = |conn: &mut Conn, n: &str| variable(conn, n).unwrap_or_default();
    let log_bin = v(&mut conn, "log_bin");
    item(
        "log_bin is ON",
        log_bin == "1" || log_bin.eq_ignore_ascii_case("ON"),
        format!("log_bin = {log_bin}"),
        "start the server with log_bin (e.g. log_bin = mysql-bin in my.cnf) and restart it",
    );
    let format = v(&mut conn, "binlog_format");
    item(
        "binlog_format is ROW",
        format.eq_ignore_ascii_case("ROW"),
        format!("binlog_format = {format}"),
        "SET GLOBAL binlog_format = 'ROW' (and binlog_format = ROW in my.cnf)",
    );
    let image = v(&mut conn, "binlog_row_image");
    item(
        "binlog_row_image is FULL",
        image.eq_ignore_ascii_case("FULL"),
        format!("binlog_row_image = {image}"),
        "SET GLOBAL binlog_row_image = 'FULL' (and binlog_row_image = FULL in my.cnf)",
    );
    // Column metadata: without it the binlog has no column names, signedness, charsets or
    // ENUM/SET labels; the schema history supplies them.
    let metadata = v(&mut conn, "binlog_row_metadata");
    if !metadata.is_empty() {
        let full = metadata.eq_ignore_ascii_case("FULL");
        item(
            "column metadata (binlog_row_metadata)",
            true,
            if full {
                "binlog_row_metadata = FULL: names, signedness and charsets are in the binlog"
                    .to_owned()
            } else {
                format!(
                    "binlog_row_metadata = {metadata}: names, signedness, charsets and labels come from the schema history (information_schema, read at every DDL); FULL is more robust when the tracker falls far behind"
                )
            },
            "",
        );
    }
    // Server id.
    let own = v(&mut conn, "server_id");
    let replicas: Vec<u32> = ["SHOW REPLICAS", "SHOW SLAVE HOSTS"]
        .iter()
        .find_map(|q| {
            conn.query_map(*q, |r: mysql::Row| r.get::<u32, _>(0).unwrap_or(0))
                .ok()
        })
        .unwrap_or_default();
    let clash = own == opts.server_id.to_string() || replicas.contains(&opts.server_id);
    item(
        "the replica server id is unique",
        !clash,
        format!(
            "ours {}, the server's {own}, other replicas {replicas:?}",
            opts.server_id
        ),
        "choose another --server-id",
    );
    // Start position.
    match binary_logs(&mut conn) {
        Ok(logs) => {
            let oldest = logs.first().map_or("(none)", |l| l.0.as_str()).to_owned();
            let want: Option<(String, u64)> = match (resume, &opts.start) {
                (Some(p), _) => Some((p.file_name.clone(), p.offset)),
                (None, StartPosition::FilePos(f, p)) => Some((f.clone(), *p)),
                _ => None,
            };
            match want {
                Some((f, p)) => {
                    let found = logs.iter().find(|l| l.0 == f);
                    item(
                        "the start position is still on the server",
                        found.is_some_and(|l| p <= l.1),
                        match found {
                            Some(l) => format!("{f}:{p} (the file has {} bytes)", l.1),
                            None => format!(
                                "{f} is not on the server (purged?); the oldest binlog it has is {oldest}"
                            ),
                        },
                        "start again from a position the server has (--start earliest, or a FILE:POS it lists in SHOW BINARY LOGS), in a new store",
                    );
                }
                None => item(
                    "the start position is still on the server",
                    !logs.is_empty(),
                    format!("{} binlogs, the oldest {oldest}", logs.len()),
                    "enable the binary log",
                ),
            }
        }
        Err(e) => item(
            "the start position is still on the server",
            false,
            e.to_string(),
            &format!(
                "the account needs REPLICATION CLIENT (or BINLOG MONITOR) to list the binlogs: GRANT REPLICATION CLIENT ON *.* TO {}@{};",
                sql_string(&account.0),
                sql_string(&account.1)
            ),
        ),
    }
    let checksum = v(&mut conn, "binlog_checksum");
    item(
        "binlog_checksum is handled",
        checksum.is_empty()
            || checksum.eq_ignore_ascii_case("NONE")
            || checksum.eq_ignore_ascii_case("CRC32"),
        format!(
            "binlog_checksum = {}; asked for as @master_binlog_checksum, verified on every event",
            if checksum.is_empty() {
                "(not supported: pre-5.6)"
            } else {
                &checksum
            }
        ),
        "use binlog_checksum = CRC32 or NONE",
    );
    item(
        "MariaDB capabilities",
        true,
        if mariadb {
            format!("{version}: @mariadb_slave_capability=4 is set, so GTIDs arrive as GTID events")
        } else {
            format!("{version}: not MariaDB, nothing to set")
        },
        "",
    );
    Ok(items)
}

/// `'text'` as a MySQL string literal.
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The GRANT statements that give `user@host` the missing privileges (`missing` as the
/// precheck lists them: global privileges, `SELECT ON *.*`, `SELECT ON `db`.*`, ...).
fn grant_fix(missing: &[String], user: &str, host: &str) -> String {
    let to = format!("{}@{}", sql_string(user), sql_string(host));
    let mut global: Vec<&str> = Vec::new();
    let mut statements = Vec::new();
    for m in missing {
        match m.as_str() {
            "SELECT ON *.*" => global.push("SELECT"),
            p if !p.contains(" ON ") => global.push(p),
            p => statements.push(format!("GRANT {p} TO {to};")),
        }
    }
    if !global.is_empty() {
        statements.insert(0, format!("GRANT {} ON *.* TO {to};", global.join(", ")));
    }
    statements.join(" ")
}

/// Databases whose tables are never tracked.
const SYSTEM_DATABASES: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// The columns of every table of `database` (or of every user database), from
/// `information_schema`, as (database, table, columns).
fn schema_snapshot(
    conn: &mut Conn,
    database: Option<&str>,
) -> Result<Vec<(String, String, Vec<HistoryColumn>)>> {
    let sql = "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, \
               c.COLUMN_KEY, coll.ID \
               FROM information_schema.COLUMNS c \
               JOIN information_schema.TABLES t \
                 ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
               LEFT JOIN information_schema.COLLATIONS coll ON coll.COLLATION_NAME = c.COLLATION_NAME \
               WHERE t.TABLE_TYPE = 'BASE TABLE' AND (? IS NULL OR c.TABLE_SCHEMA = ?) \
               ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION";
    // Any failure here is retried (from the stored position) rather than fatal, and never
    // skipped: a missing version could let an older one name the columns.
    let rows: Vec<mysql::Row> = conn.exec(sql, (database, database)).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read information_schema.COLUMNS for the schema history: {e}"),
        )
    })?;
    let mut out: Vec<(String, String, Vec<HistoryColumn>)> = Vec::new();
    for r in rows {
        let db: String = r.get(0).unwrap_or_default();
        if SYSTEM_DATABASES.contains(&db.as_str()) {
            continue;
        }
        let table: String = r.get(1).unwrap_or_default();
        let column_type: String = r.get(4).unwrap_or_default();
        let data_type: String = r
            .get::<String, _>(3)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let col = HistoryColumn {
            name: r.get(2).unwrap_or_default(),
            unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
            values: if data_type == "enum" || data_type == "set" {
                labels(&column_type)
            } else {
                Vec::new()
            },
            data_type,
            collation_id: r.get::<Option<u16>, _>(6).flatten(),
            primary_key: r.get::<String, _>(5).is_some_and(|k| k == "PRI"),
        };
        match out.last_mut() {
            Some((d, t, cols)) if *d == db && *t == table => cols.push(col),
            _ => out.push((db, table, vec![col])),
        }
    }
    Ok(out)
}

/// The labels of `enum('a','b''c')` / `set(...)`.
fn labels(column_type: &str) -> Vec<String> {
    let inner = column_type
        .find('(')
        .and_then(|i| column_type.get(i + 1..column_type.len().saturating_sub(1)))
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', false) => quoted = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            ('\'', true) => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// Records the schema snapshot in the store's history at `cp`; `only_new`: skip tables that
/// have a version already (at a resume, the server's current schema may be ahead of the
/// backlog still to read, whose DDL records their own versions).
fn record_snapshot(
    store: &Store,
    snapshot: &[(String, String, Vec<HistoryColumn>)],
    cp: Checkpoint,
    only_new: bool,
) -> Result<()> {
    for (db, table, cols) in snapshot {
        if only_new
            && store
                .schema_at(db, table, Checkpoint::new(u32::MAX, u64::MAX))?
                .is_some()
        {
            continue;
        }
        store.record_schema(db, table, cp, cols)?;
    }
    Ok(())
}

/// Sets the session up and asks for the binlog from `file:pos` (or a MariaDB GTID).
fn start_dump(
    url: &SourceUrl,
    opts: &LiveOptions,
    file: &str,
    pos: u64,
    gtid: Option<&str>,
) -> Result<(mysql::BinlogStream, ChecksumAlg)> {
    let mut conn = connect(url, opts)?;
    let checksum = variable(&mut conn, "global.binlog_checksum").unwrap_or_default();
    let alg = if checksum.eq_ignore_ascii_case("CRC32") {
        ChecksumAlg::Crc32
    } else if checksum.is_empty() {
        ChecksumAlg::None
    } else {
        ChecksumAlg::Off
    };
    let version = variable(&mut conn, "version").unwrap_or_default();
    let mut setup = vec![
        "SET @master_binlog_checksum = @@global.binlog_checksum".to_owned(),
        format!(
            "SET @master_heartbeat_period = {}",
            opts.heartbeat.as_nanos()
        ),
    ];
    if version.contains("MariaDB") {
        setup.push("SET @mariadb_slave_capability = 4".to_owned());
        if let Some(g) = gtid {
            setup.push(format!("SET @slave_connect_state = '{g}'"));
            setup.push("SET @slave_gtid_strict_mode = 1".to_owned());
        }
    } else if gtid.is_some() {
        return Err(Error::unsupported(
            "a GTID start is supported with MariaDB; for MySQL use FILE:POS",
        ));
    }
    for q in &setup {
        conn.query_drop(q)
            .map_err(|e| db_err(&format!("cannot set up replication ({q})"), &e))?;
    }
    let pos32 = u32::try_from(pos)
        .map_err(|_| Error::invalid(format!("position {pos} is beyond 4 GiB")))?;
    let req = BinlogRequest::new(opts.server_id)
        .with_filename(file.as_bytes().to_vec())
        .with_pos(pos32);
    let stream = conn
        .get_binlog_stream(req)
        .map_err(|e| db_err(&format!("cannot start the binlog dump at {file}:{pos}"), &e))?;
    Ok((stream, alg))
}

/// Raw event bytes (or the error that ended the stream) from the network thread.
type Wire = std::result::Result<Vec<u8>, Error>;

/// Reads the stream on its own thread: the ingest loop can then tell "nothing more right now"
/// (commit) from "more is coming" (batch on).
fn spawn_network(mut stream: mysql::BinlogStream, tx: SyncSender<Wire>) -> Result<()> {
    std::thread::Builder::new()
        .name("changetrack-binlog".into())
        .spawn(move || loop {
            // mysql_common's event reader panics on a malformed event size; a server that sends
            // one must not take the process down.
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stream.next()));
            let msg: Wire = match next {
                Ok(Some(Ok(ev))) => {
                    let mut raw = Vec::with_capacity(ev.data().len() + 24);
                    let h = ev.header();
                    let mut head = Vec::with_capacity(19);
                    mysql_common::proto::MySerialize::serialize(&h, &mut head);
                    raw.extend_from_slice(&head);
                    raw.extend_from_slice(ev.data());
                    let is_fde = h.event_type_raw() == frame::FORMAT_DESCRIPTION;
                    if is_fde {
                        if let Ok(Some(alg)) = ev.footer().get_checksum_alg() {
                            raw.push(alg as u8);
                        }
                    }
                    if let Some(c) = ev.checksum() {
                        raw.extend_from_slice(&c);
                    }
                    Ok(raw)
                }
                Ok(Some(Err(e))) => Err(db_err("the binlog stream failed", &e)),
                Ok(None) => Err(Error::new(
                    ErrorKind::Io,
                    "the server ended the binlog stream",
                )),
                Err(_) => Err(Error::corruption(
                    "the server sent a malformed binlog event",
                )),
            };
            let end = msg.is_err();
            if tx.send(msg).is_err() || end {
                return;
            }
        })
        .map(|_| ())
        .map_err(|e| Error::io("cannot start the network thread", e))
}

/// The live source for [`crate::ingest::run`].
struct LiveReader {
    rx: Receiver<Wire>,
    /// An event received while waiting.
    pending: Option<Wire>,
    decoder: Decoder,
    /// The server's checksum algorithm, used until the first FDE.
    server_alg: ChecksumAlg,
    seen_fde: bool,
    file_name: String,
    file_index: u32,
    /// Where the last event fed ended (the server's position).
    end: u64,
    bytes: u64,
    max_event_size: u32,
    poll: Duration,
    /// The last transaction just ended: answer "nothing more for now" unless an event is
    /// already waiting, so the batch commits at once.
    boundary: bool,
    /// For the schema history: a connection for information_schema, and the store.
    schema: Option<(Conn, Store)>,
}

fn file_index_of(name: &str) -> Option<u32> {
    name.rsplit_once('.').and_then(|(_, n)| n.parse().ok())
}

impl LiveReader {
    fn feed(&mut self, raw: &[u8]) -> Result<()> {
        self.bytes += raw.len() as u64;
        let alg = if self.seen_fde {
            self.decoder.checksum_alg()
        } else {
            self.server_alg
        };
        let ev = match frame::frame_at(raw, 0, alg, self.max_event_size)? {
            Framed::Event(ev) => ev,
            _ => {
                return Err(Error::corruption(
                    "a binlog packet does not hold one whole event",
                ))
            }
        };
        let h = ev.header;
        let log_pos = u64::from(h.log_pos);
        let located = |e: Error| {
            e.at_offset(log_pos.saturating_sub(u64::from(h.event_size)))
                .in_file(std::path::Path::new(&self.file_name))
        };
        match h.type_code {
            4 => {
                // ROTATE (the fake one at the start, or the real one at the end of a file).
                let name = String::from_utf8_lossy(ev.body.get(8..).unwrap_or_default())
                    .trim_end_matches('\0')
                    .to_owned();
                let index = file_index_of(&name).ok_or_else(|| {
                    Error::unsupported(format!("binlog file {name:?} has no numeric suffix"))
                })?;
                if name != self.file_name {
                    self.file_name = name;
                    self.file_index = index;
                    self.decoder.start_file(index);
                    self.seen_fde = false;
                }
                Ok(())
            }
            // Heartbeats: the stream is alive; nothing to decode.
            27 | 41 => Ok(()),
            t => {
                if t == frame::FORMAT_DESCRIPTION {
                    self.seen_fde = true;
                }
                let offset = if log_pos == 0 {
                    self.end
                } else {
                    log_pos.saturating_sub(u64::from(h.event_size))
                };
                let ev = RawEvent { offset, ..ev };
                self.decoder.feed(&ev).map_err(located)?;
                if log_pos != 0 {
                    self.end = log_pos;
                }
                Ok(())
            }
        }
    }

    /// After a DDL statement: the new definitions of its database's tables, from its
    /// checkpoint on. Read from the server now, so right when the tracker keeps up; a version
    /// that does not match later TABLE_MAPs' column types is never used (names stay `@N`).
    fn record_schema_after(&mut self, ddl: &ChangeRecord) -> Result<()> {
        let Some((conn, store)) = self.schema.as_mut() else {
            return Ok(());
        };
        let stmt = ddl.ddl.as_ref().map_or("", |d| d.statement.as_str());
        let db = crate::filter::ddl_object(stmt)
            .0
            .or_else(|| ddl.database.clone());
        let snapshot = schema_snapshot(conn, db.as_deref())?;
        record_snapshot(store, &snapshot, ddl.checkpoint, false)
    }

    fn take(&mut self, msg: Wire) -> Result<()> {
        let raw = msg?;
        self.feed(&raw)
    }
}

impl RecordSource for LiveReader {
    fn next_record(&mut self) -> Result<Option<ChangeRecord>> {
        loop {
            if let Some(r) = self.decoder.pop() {
                if r.op == crate::record::Op::Commit || !self.decoder.in_transaction() {
                    self.boundary = true;
                }
                if r.op == crate::record::Op::Ddl {
                    self.record_schema_after(&r)?;
                }
                return Ok(Some(r));
            }
            if let Some(m) = self.pending.take() {
                self.take(m)?;
                continue;
            }
            match self.rx.try_recv() {
                Ok(m) => self.take(m)?,
                Err(_) if self.boundary => {
                    // Caught up at a transaction boundary: let the batch commit now.
                    self.boundary = false;
                    return Ok(None);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    match self.rx.recv_timeout(self.poll) {
                        Ok(m) => self.take(m)?,
                        Err(RecvTimeoutError::Timeout) => return Ok(None),
                        Err(RecvTimeoutError::Disconnected) => {
                            return Err(Error::new(ErrorKind::Io, "the network thread ended"))
                        }
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(Error::new(ErrorKind::Io, "the network thread ended"))
                }
            }
        }
    }

    fn position_after(&self, prev_through: Checkpoint) -> SourcePosition {
        let here = Checkpoint::new(self.file_index, self.end);
        let stored_through = here.max(prev_through);
        match self.decoder.pending_xa_start() {
            Some(xa) if xa < here => {
                let name = match self.file_name.rsplit_once('.') {
                    Some((base, n)) if xa.file_index != self.file_index => {
                        format!("{base}.{:0width$}", xa.file_index, width = n.len())
                    }
                    _ => self.file_name.clone(),
                };
                SourcePosition {
                    file_name: name,
                    file_index: xa.file_index,
                    offset: xa.offset,
                    stored_through,
                }
            }
            _ => SourcePosition {
                file_name: self.file_name.clone(),
                file_index: self.file_index,
                offset: self.end,
                stored_through,
            },
        }
    }

    fn wait_for_more(&mut self) -> Result<()> {
        if self.pending.is_none() {
            match self.rx.recv_timeout(self.poll) {
                Ok(m) => self.pending = Some(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::new(ErrorKind::Io, "the network thread ended"))
                }
            }
        }
        Ok(())
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn follows(&self) -> bool {
        true
    }
}

/// Whether an error is worth reconnecting for (the network, the server going away), as
/// opposed to bad data or a refusal.
fn retriable(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Io)
}

/// [`precheck`], with the failed items as one error: `Unauthorized` when the server refused
/// the account, `PrecheckFailed` for any other failed item (a start position the server no
/// longer has among them). Its message lists every failed item with its fix.
/// [`ingest_live`] runs it before it streams; a caller can run it before it creates a store.
///
/// # Errors
/// As above; bad options.
pub fn require_precheck(
    url: &SourceUrl,
    opts: &LiveOptions,
    filter: &Filter,
    resume: Option<&SourcePosition>,
) -> Result<()> {
    let failed: Vec<CheckItem> = precheck(url, opts, filter, resume)?
        .into_iter()
        .filter(|i| !i.passed)
        .collect();
    if !failed.is_empty() {
        // As `changetrack precheck` decides its exit code: refused credentials, or a failed
        // check.
        let kind = if failed
            .iter()
            .any(|i| i.error == Some(ErrorKind::Unauthorized))
        {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::PrecheckFailed
        };
        Err(Error::new(
            kind,
            format!(
                "precheck failed: {}",
                failed
                    .iter()
                    .map(|i| format!("{}: {} (fix: {})", i.name, i.detail, i.fix))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    } else {
        Ok(())
    }
}

/// Streams from a live server into `store` until `stop` is set: resumes after the stored
/// position (or starts at `opts.start`), reconnects with backoff on network errors and server
/// restarts, and stops at a transaction boundary.
///
/// # Errors
/// A failed precheck item (`PrecheckFailed`, `Unauthorized`: see [`require_precheck`]); bad
/// binlog data (`Corruption`, `Unsupported`), store errors.
pub fn ingest_live(
    store: &Store,
    url: &SourceUrl,
    opts: &LiveOptions,
    ingest_opts: &IngestOptions,
    stop: Option<&StopFlag>,
    progress: &mut dyn FnMut(IngestProgress),
) -> Result<IngestStats> {
    opts.validate()?;
    let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
    // The server may be restarting: wait for it (with backoff) rather than give up, unless it
    // refuses the credentials. A stop request while waiting is a clean stop.
    if !wait_for_server(url, opts, stop)? {
        return Ok(IngestStats {
            position: store.source_position()?,
            ..IngestStats::default()
        });
    }
    let resume = store.source_position()?;
    let filter = store
        .current_filter()?
        .map(|(f, _)| f)
        .or_else(|| ingest_opts.filter.clone())
        .unwrap_or_default();
    require_precheck(url, opts, &filter, resume.as_ref())?;
    let started = Instant::now();
    let mut total = IngestStats::default();
    let mut backoff = Duration::from_millis(100);
    let mut failures = 0u32;
    while !stopped() {
        let before = store.source_position()?;
        let attempt = (|| -> Result<IngestStats> {
            let (file, pos, gtid) = match store.source_position()? {
                Some(p) => (p.file_name.clone(), p.offset, None),
                None => {
                    let mut conn = connect(url, opts)?;
                    match &opts.start {
                        StartPosition::Now => {
                            let (f, p) = current_position(&mut conn)?;
                            (f, p, None)
                        }
                        StartPosition::Earliest => {
                            let f = binary_logs(&mut conn)?
                                .first()
                                .map(|l| l.0.clone())
                                .ok_or_else(|| Error::invalid("the server has no binlogs"))?;
                            (f, 4, None)
                        }
                        StartPosition::FilePos(f, p) => (f.clone(), *p, None),
                        StartPosition::Gtid(g) => (String::new(), 4, Some(g.clone())),
                    }
                }
            };
            tracing::info!(source = %url, file = %file, pos, "streaming");
            // Schema history: every table's current definition for tables it has none of yet.
            let mut schema_conn = connect(url, opts)?;
            let snapshot = schema_snapshot(&mut schema_conn, None)?;
            let start_cp = Checkpoint::new(file_index_of(&file).unwrap_or(0), pos);
            record_snapshot(store, &snapshot, start_cp, true)?;
            let (stream, alg) = start_dump(url, opts, &file, pos, gtid.as_deref())?;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Wire>(4096);
            spawn_network(stream, tx)?;
            let mut reader = LiveReader {
                rx,
                pending: None,
                decoder: Decoder::new(opts.binlog.clone(), file_index_of(&file).unwrap_or(0)),
                server_alg: alg,
                seen_fde: false,
                file_name: file.clone(),
                file_index: file_index_of(&file).unwrap_or(0),
                end: pos,
                bytes: 0,
                max_event_size: opts.binlog.max_event_size,
                poll: ingest_opts.poll_interval.max(Duration::from_millis(1)),
                boundary: false,
                schema: Some((schema_conn, store.clone())),
            };
            reader.decoder.set_schema_lookup(store.schema_lookup());
            crate::ingest::run(
                store,
                &mut reader,
                ingest_opts,
                stop,
                progress,
                Instant::now(),
            )
        })();
        match attempt {
            Ok(s) => {
                accumulate(&mut total, &s);
                break;
            }
            Err(e) if retriable(&e) && !stopped() => {
                if store.source_position()? != before {
                    // It streamed for a while: this is a new failure, not the same one again.
                    backoff = Duration::from_millis(100);
                    failures = 0;
                }
                failures = failures.saturating_add(1);
                if opts.max_retries.is_some_and(|n| failures > n) {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("{e} (gave up after {failures} attempts, --max-retries)"),
                    ));
                }
                tracing::warn!("{e}; reconnecting (attempt {failures}) in {backoff:?}");
                if sleep_unless_stopped(backoff, stop) {
                    break;
                }
                backoff = (backoff * 2).min(opts.max_backoff);
            }
            Err(e) => return Err(e),
        }
    }
    total.elapsed = started.elapsed();
    total.position = store.source_position()?;
    Ok(total)
}

fn accumulate(total: &mut IngestStats, s: &IngestStats) {
    total.transactions += s.transactions;
    total.records += s.records;
    total.bytes += s.bytes;
    total.skipped_stored += s.skipped_stored;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!("now".parse::<StartPosition>().unwrap(), StartPosition::Now);
        assert_eq!(
            "mysql-bin.000003:1234".parse::<StartPosition>().unwrap(),
            StartPosition::FilePos("mysql-bin.000003".into(), 1234)
        );
        assert_eq!(
            "0-1-100,1-2-5".parse::<StartPosition>().unwrap(),
            StartPosition::Gtid("0-1-100,1-2-5".into())
        );
        assert!("later".parse::<StartPosition>().is_err());
    }

    #[test]
    fn enum_labels() {
        assert_eq!(labels("enum('a','b''c','')"), vec!["a", "b'c", ""]);
        assert_eq!(labels("set('x,y','z')"), vec!["x,y", "z"]);
    }

    #[test]
    fn urls_hide_the_password() {
        let u: SourceUrl = "mysql://repl:s3cret@127.0.0.1:3307".parse().unwrap();
        assert_eq!(u.to_string(), "mysql://repl@127.0.0.1:3307");
        assert!(!format!("{u:?}").contains("s3cret"));
        let e = "mysql://repl:s3cret@[bad".parse::<SourceUrl>().unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
    }
}
