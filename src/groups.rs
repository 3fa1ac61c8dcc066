//! `changetrack group ...`, `consume` and `objects ...`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};

use changetrack::filter::{ObjectAction, ObjectChange};
use changetrack::store::{check_no_lost_requests, request_object_change};
use changetrack::{
    Checkpoint, ConsumerOptions, Error, ErrorKind, GroupStatus, Groups, StartAt, Store,
};

use super::{open_reader, parse_time, utc, Format, Output, RecordFormat};

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Table,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group; prints its id as the last line. The password comes from
    /// CHANGETRACK_PASSWORD, --password-file, or a prompt (asked twice).
    Create {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// The group's name.
        #[arg(long)]
        name: String,
        /// The group's username (1-16 of A-Z a-z 0-9 _).
        #[arg(long)]
        user: String,
        /// Read the password from the first line of this file.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the groups with their committed position, remaining records and delay.
    List {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Change a group's password: the old one from CHANGETRACK_PASSWORD / --password-file /
    /// a prompt, the new one from CHANGETRACK_NEW_PASSWORD / --new-password-file / a prompt.
    Passwd {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// The group id.
        #[arg(long)]
        group: String,
        /// The group's username.
        #[arg(long)]
        user: String,
        /// Read the old password from the first line of this file.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Read the new password from the first line of this file.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
    },
    /// Delete a group and its committed position for good.
    Delete {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// The group id.
        #[arg(long)]
        group: String,
    },
}

#[derive(Subcommand)]
pub enum ObjectsCommand {
    /// Show what is tracked, the history of changes with their checkpoints, and pending
    /// requests.
    List,
    /// Start tracking databases, tables or data types (from the next transaction on).
    Add {
        /// Databases (comma-separated).
        #[arg(long)]
        databases: Option<String>,
        /// Tables (comma-separated db.table).
        #[arg(long)]
        tables: Option<String>,
        /// Data types: dml, ddl (comma-separated).
        #[arg(long)]
        types: Option<String>,
    },
    /// Stop tracking databases, tables or data types (from the next transaction on).
    Remove {
        /// Databases (comma-separated).
        #[arg(long)]
        databases: Option<String>,
        /// Tables (comma-separated db.table).
        #[arg(long)]
        tables: Option<String>,
        /// Data types: dml, ddl (comma-separated).
        #[arg(long)]
        types: Option<String>,
    },
}

/// A password from a file (first line), the environment, or a prompt on the terminal (twice
/// when `confirm`). Never from the command line.
fn password(file: Option<&Path>, env: &str, prompt: &str, confirm: bool) -> Result<String, Error> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {}: {e}", f.display())))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("no password: set {env}, use a password file, or run on a terminal"),
        ));
    }
    let read = |p: &str| {
        rpassword::prompt_password(p)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read the password: {e}")))
    };
    let first = read(prompt)?;
    if confirm && read("Again: ")? != first {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the two passwords differ",
        ));
    }
    Ok(first)
}

pub fn group(cmd: GroupCommand) -> Result<(), Error> {
    match cmd {
        GroupCommand::Create {
            store,
            name,
            user,
            password_file,
        } => {
            let groups = Groups::open(&store)?;
            changetrack::group::validate_username(&user)?;
            let pw = password(
                password_file.as_deref(),
                "CHANGETRACK_PASSWORD",
                "Password: ",
                true,
            )?;
            let id = groups.create(&name, &user, &pw)?;
            outln!("{id}");
            Ok(())
        }
        GroupCommand::List { store, format } => {
            let st = open_reader(&store)?;
            let list = st.groups()?.status_all(&st)?;
            print_groups(&list, format);
            // A damaged group is listed, marked, and affects only itself.
            for g in list.iter().filter(|g| g.damaged.is_some()) {
                eprintln!(
                    "warning: group {} is damaged: {}",
                    g.info.id,
                    g.damaged.as_deref().unwrap_or_default()
                );
            }
            Ok(())
        }
        GroupCommand::Passwd {
            store,
            group,
            user,
            password_file,
            new_password_file,
        } => {
            let groups = Groups::open(&store)?;
            let old = password(
                password_file.as_deref(),
                "CHANGETRACK_PASSWORD",
                "Current password: ",
                false,
            )?;
            groups.authenticate(&group, &user, &old)?;
            let new = password(
                new_password_file.as_deref(),
                "CHANGETRACK_NEW_PASSWORD",
                "New password: ",
                true,
            )?;
            groups.change_password(&group, &old, &new)?;
            eprintln!("password of group {group} changed");
            Ok(())
        }
        GroupCommand::Delete { store, group } => {
            Groups::open(&store)?.delete(&group)?;
            eprintln!("group {group} deleted");
            Ok(())
        }
    }
}

fn print_groups(list: &[GroupStatus], format: ListFormat) {
    match format {
        ListFormat::Jsonl => {
            for g in list {
                let v = serde_json::json!({
                    "id": g.info.id,
                    "name": g.info.name,
                    "username": g.info.username,
                    "created": g.info.created,
                    "committed_seq": g.committed.map(|c| c.seq),
                    "committed_checkpoint": g.committed.map(|c| c.checkpoint.to_string()),
                    "committed_timestamp": g.committed.map(|c| c.timestamp),
                    "remaining": g.remaining,
                    "delay_seconds": g.delay_seconds,
                    "damaged": g.damaged,
                });
                outln!("{v}");
            }
        }
        ListFormat::Table => {
            let mut rows = vec![[
                "ID".to_owned(),
                "NAME".to_owned(),
                "USER".to_owned(),
                "COMMITTED CHECKPOINT".to_owned(),
                "COMMITTED TIME (UTC)".to_owned(),
                "REMAINING".to_owned(),
                "DELAY (s)".to_owned(),
            ]];
            for g in list {
                rows.push([
                    g.info.id.clone(),
                    g.info.name.clone(),
                    g.info.username.clone(),
                    g.committed
                        .map_or_else(|| "-".to_owned(), |c| c.checkpoint.to_string()),
                    g.committed
                        .map_or_else(|| "-".to_owned(), |c| utc(c.timestamp)),
                    if g.damaged.is_some() {
                        "DAMAGED".to_owned()
                    } else {
                        g.remaining.to_string()
                    },
                    g.delay_seconds
                        .map_or_else(|| "-".to_owned(), |d| d.to_string()),
                ]);
            }
            let mut widths = [0usize; 7];
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                outln!("{}", line.join("  ").trim_end());
            }
        }
    }
}

/// Options of `changetrack consume`.
pub struct ConsumeArgs {
    pub store: PathBuf,
    pub group: String,
    pub user: String,
    pub password_file: Option<PathBuf>,
    pub from_time: Option<String>,
    pub from_checkpoint: Option<String>,
    pub format: RecordFormat,
    pub commit: bool,
    pub follow: bool,
    pub no_wait: bool,
    pub session_timeout: f64,
}

/// Commit at least this often while consuming with `--commit`.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
const COMMIT_RECORDS: u64 = 10_000;

pub fn consume(a: ConsumeArgs) -> Result<(), Error> {
    let st = open_reader(&a.store)?;
    let start = match (&a.from_time, &a.from_checkpoint) {
        (Some(t), _) => StartAt::Timestamp(parse_time(t)?),
        (_, Some(c)) => StartAt::Checkpoint(c.parse::<Checkpoint>()?),
        _ => StartAt::Committed,
    };
    let pw = password(
        a.password_file.as_deref(),
        "CHANGETRACK_PASSWORD",
        "Password: ",
        false,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot install a signal handler: {e}"),
            )
        })?;
    }
    let mut c = changetrack::Consumer::open(
        &st,
        &a.group,
        &a.user,
        &pw,
        &ConsumerOptions {
            start,
            wait: !a.no_wait,
            session_timeout: Duration::try_from_secs_f64(a.session_timeout)
                .map_err(|_| Error::new(ErrorKind::InvalidArgument, "bad --session-timeout"))?,
            ..ConsumerOptions::default()
        },
    )?;
    drop(pw);
    let fmt = match a.format {
        RecordFormat::Jsonl => Format::Jsonl,
        RecordFormat::Avro => Format::Avro,
    };
    let end = st.last_seq();
    let mut out = Output::new();
    let mut last: Option<u64> = None;
    let mut uncommitted = 0u64;
    let mut last_commit = Instant::now();
    let flush_commit = |out: &mut Output, c: &mut changetrack::Consumer, last: Option<u64>| {
        // Output first: a record is committed only once it has been written out.
        out.flush()?;
        if let Some(s) = last.filter(|_| a.commit) {
            c.commit(changetrack::CommitAt::Seq(s))?;
        }
        Ok::<(), Error>(())
    };
    while !stop.load(Ordering::SeqCst) {
        if !a.follow && c.position() > end {
            break;
        }
        let rec = match c.poll(Duration::ZERO)? {
            Some(r) => Some(r),
            None => {
                // Caught up: hand over what was read before waiting for more.
                out.flush()?;
                if !a.follow && c.position() > st.last_seq() {
                    break;
                }
                c.poll(Duration::from_millis(200))?
            }
        };
        if let Some(rec) = rec {
            out.record(fmt, &rec, true)?;
            last = Some(rec.seq);
            uncommitted += 1;
        }
        if uncommitted > 0
            && (uncommitted >= COMMIT_RECORDS || last_commit.elapsed() >= COMMIT_EVERY)
        {
            flush_commit(&mut out, &mut c, last)?;
            uncommitted = 0;
            last_commit = Instant::now();
        }
    }
    flush_commit(&mut out, &mut c, last)?;
    out.finish()
}

pub fn objects(store: &Path, cmd: ObjectsCommand) -> Result<(), Error> {
    let (action, databases, tables, types) = match cmd {
        ObjectsCommand::List => return objects_list(store),
        ObjectsCommand::Add {
            databases,
            tables,
            types,
        } => (ObjectAction::Add, databases, tables, types),
        ObjectsCommand::Remove {
            databases,
            tables,
            types,
        } => (ObjectAction::Remove, databases, tables, types),
    };
    let change = ObjectChange::parse(
        action,
        databases.as_deref(),
        tables.as_deref(),
        types.as_deref(),
    )?;
    let id = request_object_change(store, &change)?;
    eprintln!(
        "request {id} recorded; ingestion applies it between two transactions (or when it next starts)"
    );
    Ok(())
}

fn objects_list(store: &Path) -> Result<(), Error> {
    let st: Store = open_reader(&store.to_path_buf())?;
    let current = st.current_filter()?;
    let applied = current.as_ref().map_or(0, |(_, a)| *a);
    match &current {
        Some((f, _)) => outln!("tracking: {}", f.describe()),
        None => outln!("tracking: everything (no ingestion yet)"),
    }
    let history = st.filter_history()?;
    if !history.is_empty() {
        outln!("history:");
        for h in history {
            let reqs = if h.requests.is_empty() {
                String::new()
            } else {
                format!(
                    " (requests {})",
                    h.requests
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            outln!(
                "  from seq {} after checkpoint {}: {}{reqs}",
                h.seq,
                h.checkpoint,
                h.filter.describe()
            );
        }
    }
    // Requests lost before ingestion applied them are an error here too, not "nothing pending".
    let pending: Vec<_> = check_no_lost_requests(store, applied)?
        .into_iter()
        .filter(|r| r.id > applied)
        .collect();
    if !pending.is_empty() {
        outln!("pending:");
        for r in pending {
            outln!(
                "  request {}: {}",
                r.id,
                serde_json::to_string(&r.change).unwrap_or_default()
            );
        }
    }
    Ok(())
}
