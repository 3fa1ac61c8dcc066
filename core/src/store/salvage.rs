//! `Store::salvage`: keep what is provably intact of a damaged store, report the rest.
//!
//! RocksDB's own answer to damage (point-in-time WAL recovery, or `repair`) drops or rewrites
//! data without saying what; here nothing is deleted. A deep [`Store::check`] finds the longest
//! run of whole transactions from the oldest record on whose records all read back and decode.
//! Those records are copied, with the same sequence numbers, into a new store next to the old
//! one, with the schema and filter histories, the groups and the pending object requests; the
//! new store's resume position is the last kept transaction's commit checkpoint, so ingesting
//! the same binlogs again stores what was lost, under the seqs it had. Then the old store is
//! renamed to `<dir>.damaged-<time>` (kept for inspection, never deleted) and the new one takes
//! its place.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Checkpoint, Op};

use super::{SourcePosition, Store, StoreOptions};

/// What [`Store::salvage`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvageReport {
    /// What the check found.
    pub problems: Vec<String>,
    /// The seq range kept (`None`: nothing had to be kept, or nothing could be).
    pub kept: Option<(u64, u64)>,
    /// The seq range the damaged store claimed (its tail).
    pub claimed: Option<(u64, u64)>,
    /// Where ingestion resumes: everything through this checkpoint is in the salvaged store.
    pub resume_after: Option<Checkpoint>,
    /// Where the damaged store was moved (`None` when it was intact and left as it was).
    pub damaged_copy: Option<PathBuf>,
    /// Groups whose committed position is after the kept records: they resume there once
    /// ingestion has stored those seqs again.
    pub groups_ahead: Vec<String>,
}

/// Commit the copy every this many records (at a transaction boundary).
const COPY_BATCH: u64 = 20_000;

/// `name` with its numeric suffix replaced by `index` at the same width
/// (`mysql-bin.000007`, 9 -> `mysql-bin.000009`).
fn file_name_for(name: &str, old_index: u32, index: u32) -> String {
    if index == old_index {
        return name.to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, digits))
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{stem}.{index:0width$}", width = digits.len())
        }
        _ => name.to_owned(),
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)
        .map_err(|e| Error::io(format!("cannot create {}", to.display()), e))?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| Error::io(format!("cannot list {}", from.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("cannot list {}", from.display()), e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e
            .file_type()
            .map_err(|err| Error::io(format!("cannot read {}", src.display()), err))?;
        if ty.is_dir() {
            copy_dir(&src, &dst)?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst)
                .map_err(|err| Error::io(format!("cannot copy {}", src.display()), err))?;
        }
    }
    Ok(())
}

impl Store {
    /// Salvages the store in `path` (no writer may have it open): when a deep check finds
    /// nothing wrong it changes nothing; otherwise see the module documentation.
    ///
    /// # Errors
    /// `NotFound` when there is no store; `Locked` while a writer runs; `Corruption` when not
    /// even the oldest transaction is intact (nothing provable to keep: re-ingest into a new
    /// store); `Io`.
    pub fn salvage(path: &Path) -> Result<SalvageReport> {
        let report = Self::check(path, true)?;
        // No writer may run while the store is replaced (held until the rename).
        let lock = super::lock_writer(path)?;
        let mut out = SalvageReport {
            problems: report.problems.clone(),
            kept: None,
            claimed: report.seq_range,
            resume_after: None,
            damaged_copy: None,
            groups_ahead: Vec::new(),
        };
        if report.is_ok() {
            return Ok(out);
        }
        let old = Self::open_checked(
            path,
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            },
            false,
        )?;
        let (Some((first, last)), Some(resume_after)) = (report.intact, report.resume_after) else {
            return Err(Error::corruption(format!(
                "nothing in {} is provably intact (not even its oldest transaction): ingest the binlogs again into a new store; nothing was changed",
                path.display()
            )));
        };
        let old_pos = old.source_position().ok().flatten();
        let tmp = PathBuf::from(format!("{}.salvage-{}", path.display(), std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| Error::io(format!("cannot remove {}", tmp.display()), e))?;
        }
        {
            let new = Self::open(&tmp, StoreOptions::default())?;
            new.start_at(first)?;
            new.copy_schema_history(&old)?;
            let mut w = new.begin()?;
            let mut in_txn = false;
            for seq in first..=last {
                let rec = old.get_raw(seq)?;
                if !in_txn {
                    w.mark_transaction_start();
                    if w.len() >= COPY_BATCH {
                        w.commit(None)?;
                        w = new.begin()?;
                        w.mark_transaction_start();
                    }
                }
                w.push(&rec)?;
                in_txn = match rec.op {
                    Op::Begin => true,
                    Op::Commit => false,
                    _ => in_txn,
                };
            }
            let position = match &old_pos {
                Some(p) => SourcePosition {
                    file_name: file_name_for(&p.file_name, p.file_index, resume_after.file_index),
                    file_index: resume_after.file_index,
                    offset: resume_after.offset,
                    stored_through: resume_after,
                },
                None => SourcePosition {
                    file_name: String::new(),
                    file_index: resume_after.file_index,
                    offset: resume_after.offset,
                    stored_through: resume_after,
                },
            };
            w.commit(Some(&position))?;
            let history: Vec<_> = old
                .filter_history()
                .unwrap_or_default()
                .into_iter()
                .filter(|h| h.seq <= last + 1)
                .collect();
            new.restore_filter_history(&history)?;
        }
        drop(old);
        let groups_dir = path.join("groups");
        if groups_dir.is_dir() {
            copy_dir(&groups_dir, &tmp.join("groups"))?;
        }
        for name in [super::objects::REQUESTS, super::objects::REQUESTED] {
            let file = path.join(name);
            if file.is_file() {
                std::fs::copy(&file, tmp.join(name))
                    .map_err(|e| Error::io(format!("cannot copy {}", file.display()), e))?;
            }
        }
        if let Ok(groups) = crate::group::Groups::open(&tmp).and_then(|g| g.verify_all()) {
            out.groups_ahead = groups
                .into_iter()
                .filter(|(_, c, _)| c.is_some_and(|c| c > last))
                .map(|(id, _, _)| id)
                .collect();
        }
        let stamp = crate::group::now_millis() / 1000;
        let damaged = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
        drop(lock);
        std::fs::rename(path, &damaged).map_err(|e| {
            Error::io(
                format!("cannot move {} to {}", path.display(), damaged.display()),
                e,
            )
        })?;
        std::fs::rename(&tmp, path).map_err(|e| {
            Error::io(
                format!(
                    "cannot move {} to {} (the damaged store is in {}; the salvaged one in {})",
                    tmp.display(),
                    path.display(),
                    damaged.display(),
                    tmp.display()
                ),
                e,
            )
        })?;
        out.kept = Some((first, last));
        out.resume_after = Some(resume_after);
        out.damaged_copy = Some(damaged);
        Ok(out)
    }

    /// Makes an empty writer's first record get seq `first` (a salvaged store keeps its seqs).
    fn start_at(&self, first: u64) -> Result<()> {
        let mut tail = self.inner.writer.lock().map_err(|_| super::poison_err())?;
        if tail.last_seq != 0 || first == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a store's first seq can only be set while it is empty",
            ));
        }
        tail.last_seq = first - 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::file_name_for;

    #[test]
    fn file_names_follow_the_index() {
        assert_eq!(file_name_for("mysql-bin.000007", 7, 9), "mysql-bin.000009");
        assert_eq!(file_name_for("mysql-bin.000007", 7, 7), "mysql-bin.000007");
        assert_eq!(file_name_for("b.1", 1, 12), "b.12");
        assert_eq!(file_name_for("weird", 1, 2), "weird");
    }
}
