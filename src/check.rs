//! `changetrack check` and `ingest --salvage`: what is wrong with a store, and what can be saved.

use std::path::{Path, PathBuf};

use changetrack::{Error, ErrorKind, Store};

/// Arguments of `changetrack check`.
#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The store directory (read as a follower: `ingest` may run next to it).
    #[arg(long)]
    store: PathBuf,
    /// Also read every record (each block's checksum, each record's encoding) and every index
    /// entry, and tell which whole transactions `ingest --salvage` would keep.
    #[arg(long)]
    deep: bool,
}

fn range((a, b): (u64, u64)) -> String {
    if a > b {
        "none".into()
    } else {
        format!("seq {a} to {b} ({} records)", b - a + 1)
    }
}

/// `changetrack check`: exit 0 when nothing is wrong, 1 (Corruption) with the problems.
pub(crate) fn check(a: &CheckArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let r = Store::check(&a.store, a.deep)?;
    outln!("store {}", a.store.display());
    match r.seq_range {
        Some(s) => outln!("claimed: {}", range(s)),
        None => outln!("claimed: no records"),
    }
    if r.deep {
        outln!("records read: {}", r.records_read);
    }
    outln!("groups checked: {}", r.groups);
    if r.is_ok() {
        outln!(
            "ok: no problem found ({} check, {:.1} s)",
            if r.deep { "deep" } else { "quick" },
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    outln!("problems ({}):", r.problems.len());
    for p in &r.problems {
        outln!("  - {p}");
    }
    if r.deep {
        match (r.intact, r.resume_after) {
            (Some(k), Some(cp)) => outln!(
                "can be saved: {} (whole transactions); `changetrack ingest --salvage --store {} BINLOGS...` keeps them and re-reads the binlogs after {cp}",
                range(k),
                a.store.display()
            ),
            _ => outln!(
                "can be saved: nothing provably intact; ingest the binlogs again into a new store"
            ),
        }
    } else {
        outln!(
            "`changetrack check --deep --store {}` tells what can be saved",
            a.store.display()
        );
    }
    Err(Error::new(
        ErrorKind::Corruption,
        format!(
            "the store in {} has {} problem(s)",
            a.store.display(),
            r.problems.len()
        ),
    ))
}

/// `ingest --salvage`: before ingesting, keep what is provably intact of a damaged store.
pub(crate) fn salvage(store: &Path) -> Result<(), Error> {
    if !store.join("CURRENT").exists() && !store.exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no store in {} to salvage", store.display()),
        ));
    }
    let r = Store::salvage(store)?;
    if r.problems.is_empty() {
        eprintln!("salvage: the store is intact; nothing changed");
        return Ok(());
    }
    eprintln!("salvage: problems found:");
    for p in &r.problems {
        eprintln!("  - {p}");
    }
    if let Some(k) = r.kept {
        eprintln!("salvage: kept {}", range(k));
    }
    if let (Some(c), Some(k)) = (r.claimed, r.kept) {
        if c.1 > k.1 {
            eprintln!(
                "salvage: lost seq {} to {}: ingesting the same binlogs stores them again under the same seqs",
                k.1 + 1,
                c.1
            );
        }
    }
    if let Some(cp) = r.resume_after {
        eprintln!("salvage: ingestion resumes after {cp}");
    }
    if let Some(d) = &r.damaged_copy {
        eprintln!(
            "salvage: the damaged store was moved to {} (nothing was deleted)",
            d.display()
        );
    }
    if !r.groups_ahead.is_empty() {
        eprintln!(
            "salvage: groups committed after the kept records (they resume once those seqs are stored again): {}",
            r.groups_ahead.join(", ")
        );
    }
    Ok(())
}

/// After `ingest` stopped with an error (a full disk, an I/O error): what the store holds and
/// acknowledged, and where the same command resumes. Nothing when the store cannot be read
/// (the error itself says why).
pub(crate) fn report_acknowledged(store: &Path, e: &Error) {
    if !matches!(e.kind(), ErrorKind::Io | ErrorKind::Poisoned) {
        return;
    }
    let Ok(st) = Store::open(
        store,
        changetrack::StoreOptions {
            read_only: true,
            ..changetrack::StoreOptions::default()
        },
    ) else {
        return;
    };
    let _ = st.refresh();
    let last = st.last_seq();
    let oldest = st.oldest_seq().ok().flatten().unwrap_or(0);
    let pos = st.source_position().ok().flatten().map_or_else(
        || "the start of the input".to_owned(),
        |p| format!("{}@{} ({})", p.offset, p.file_index, p.file_name),
    );
    if last == 0 {
        eprintln!("ingest stopped: the store holds no records yet; nothing was lost");
    } else {
        eprintln!(
            "ingest stopped: every transaction through seq {last} is stored and acknowledged (records {oldest} to {last}); nothing after it was stored; the same command resumes at {pos}"
        );
    }
}
