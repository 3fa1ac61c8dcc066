//! The `changetrack` command line. Thin: it calls the public library API only.
//!
//! Exit codes: 0 success; 1 an error (corrupt or unsupported input, I/O); 2 bad usage;
//! 3 the input ends inside an event (the message says where to resume).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use changetrack::record::{avro, json};
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, Error, ErrorKind};

#[derive(Parser)]
#[command(
    name = "changetrack",
    version,
    about = "Change tracking for MySQL and MariaDB binlogs"
)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line (the stable contract).
    Jsonl,
    /// Each record as a 4-byte big-endian length, then its DTS Avro bytes.
    Avro,
    /// One human-readable line per record.
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Print the change records of binlog files (or directories of them) in binlog order.
    Decode {
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Largest event accepted, in bytes.
        #[arg(long, default_value_t = 1 << 30)]
        max_event_size: u32,
        /// Stop at an INCIDENT event instead of warning.
        #[arg(long)]
        fail_on_incident: bool,
        /// Print a summary line to stderr at the end.
        #[arg(long)]
        stats: bool,
        /// Binlog files or directories (a directory is read by its .index, else by suffix).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Incomplete => 3,
        ErrorKind::InvalidArgument => 2,
        _ => 1,
    }
}

fn write_text(out: &mut String, rec: &ChangeRecord) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{} {} {:<6}",
        rec.checkpoint,
        rec.timestamp,
        rec.op.as_str()
    );
    if let Some(db) = rec.database_name() {
        let _ = write!(out, " {db}");
        if let Some(t) = rec.table_name() {
            let _ = write!(out, ".{t}");
        }
    }
    if let Some(ddl) = &rec.ddl {
        let _ = write!(out, " {}", ddl.statement.replace('\n', " "));
    }
    let full = json::to_json(rec, false);
    if rec.op.is_dml() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&full) {
            let _ = write!(out, " before={} after={}", v["before"], v["after"]);
        }
    }
    out.push('\n');
}

fn decode(
    format: Format,
    opts: BinlogOptions,
    stats: bool,
    paths: &[PathBuf],
) -> Result<(), Error> {
    let mut reader = BinlogReader::open(paths, opts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Records are rendered straight into one large buffer, written when it fills: one copy of
    // the output, not two.
    const FLUSH_AT: usize = 1 << 20;
    let mut text = String::with_capacity(FLUSH_AT + (64 << 10));
    let mut bin: Vec<u8> = Vec::with_capacity(FLUSH_AT + (64 << 10));
    let started = std::time::Instant::now();
    let mut write = |buf: &[u8]| -> Result<(), Error> {
        match out.write_all(buf) {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`) ends the output quietly, as other tools do.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(Error::new(
                ErrorKind::Io,
                format!("cannot write output: {e}"),
            )),
        }
    };
    let result = loop {
        match reader.next_record() {
            Ok(Some(rec)) => match format {
                Format::Jsonl => {
                    json::push_record(&mut text, &rec, false);
                    text.push('\n');
                }
                Format::Text => write_text(&mut text, &rec),
                Format::Avro => {
                    let at = bin.len();
                    bin.extend_from_slice(&[0; 4]);
                    avro::write_record(&mut bin, &rec);
                    let len = u32::try_from(bin.len() - at - 4).unwrap_or(u32::MAX);
                    bin[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            },
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
        if text.len() >= FLUSH_AT {
            write(text.as_bytes())?;
            text.clear();
        }
        if bin.len() >= FLUSH_AT {
            write(&bin)?;
            bin.clear();
        }
    };
    write(text.as_bytes())?;
    write(&bin)?;
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::new(
                ErrorKind::Io,
                format!("cannot write output: {e}"),
            ));
        }
    }
    let s = reader.stats();
    for inc in &s.incidents {
        eprintln!("warning: {inc}");
    }
    if stats {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{} transactions, {} records ({} rows), {} events, {} bytes in {:.3}s ({:.1} MB/s); \
             skipped: {} statement events, {} unknown events; {} XA rolled back",
            s.transactions,
            s.records,
            s.rows,
            s.events,
            s.bytes,
            secs,
            s.bytes as f64 / secs / 1e6,
            s.skipped_statements,
            s.unknown_events.values().sum::<u64>(),
            s.xa_rolled_back
        );
    }
    result
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHANGETRACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Decode {
            format,
            max_event_size,
            fail_on_incident,
            stats,
            paths,
        } => {
            let opts = BinlogOptions {
                max_event_size,
                fail_on_incident,
                ..BinlogOptions::default()
            };
            decode(format, opts, stats, &paths)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
