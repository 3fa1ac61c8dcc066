//! The ledger of verified table files (`changetrack.verified`): which of the store's table
//! files have had every block's checksum read and checked, and what each file looked like then
//! (size, modification time, status-change time, inode).
//!
//! RocksDB checks a block's checksum only when the block is read, so a byte flipped inside a
//! table file stays unnoticed by commands that read only the counters and the ends of the store
//! (`stats`, `range`) and by an `ingest` that only appends. Reading every block at every open
//! would cost time proportional to the store; the ledger makes it proportional to what changed:
//! a table file is never rewritten by RocksDB once written, so a file whose size, modification
//! time, status-change time or inode differs from its ledger entry was changed by something else
//! (or copied), and is read again; the status-change time (`ctime`) cannot be set from user
//! space, so a copy over the file that keeps its modification time (`cp -p`, `rsync -a
//! --inplace`, `touch -r`) is read again too. A file the ledger does not name is read too.
//!
//! The ledger is a cache, never a source of data: a missing, damaged or unwritable ledger only
//! means that every table file is read (again). It is written atomically (a temporary file
//! renamed over it) and carries a CRC of its lines; a ledger whose CRC does not match is
//! ignored. Limit, documented in `docs/DESIGN.md`: a change that keeps the size, both times and
//! the inode (decay on the medium) is found by the first read of that block and by `check`, not
//! by the open.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The ledger's file name in the store directory.
pub(crate) const LEDGER_FILE: &str = "changetrack.verified";

/// First line of the ledger.
const MAGIC: &str = "changetrack verified table files 2";

/// A ledger larger than this is not read (about 150,000 table files).
const MAX_LEDGER_BYTES: u64 = 16 << 20;

/// What a table file looked like: size, modification and status-change times (ns since the
/// epoch), inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
}

impl Fingerprint {
    /// The file's fingerprint now, or `None` when it cannot be read.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            inode: m.ino(),
        })
    }
}

/// Table file name (as RocksDB lists it, without the leading `/`) to its fingerprint when it
/// was verified.
#[derive(Default, Debug)]
pub(crate) struct Ledger {
    entries: HashMap<String, Fingerprint>,
}

impl Ledger {
    /// Reads the ledger of the store in `dir`; empty when it is missing, not a regular file (a
    /// FIFO would block, a device never end), too large, or damaged.
    pub(crate) fn load(dir: &Path) -> Self {
        let p = dir.join(LEDGER_FILE);
        let Ok(m) = std::fs::metadata(&p) else {
            return Self::default();
        };
        if !m.is_file() || m.len() > MAX_LEDGER_BYTES {
            tracing::debug!(
                "{} is not a regular file of at most 16 MiB: ignored",
                p.display()
            );
            return Self::default();
        }
        // Read at most the limit, whatever the file grows to meanwhile.
        let mut text = String::new();
        let read = std::fs::File::open(&p)
            .and_then(|f| f.take(MAX_LEDGER_BYTES + 1).read_to_string(&mut text))
            .ok()
            .filter(|&n| n as u64 <= MAX_LEDGER_BYTES);
        match read.and_then(|_| Self::parse(&text)) {
            Some(l) => l,
            None => {
                tracing::debug!(
                    "{} is damaged: ignored (every table file is read)",
                    p.display()
                );
                Self::default()
            }
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once('\n')?;
        if head != MAGIC {
            return None;
        }
        let (crc, lines) = body.split_once('\n')?;
        if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(lines.as_bytes()) {
            return None;
        }
        let mut entries = HashMap::new();
        for line in lines.lines() {
            let mut f = line.split(' ');
            let name = f.next()?.to_owned();
            let fp = Fingerprint {
                size: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
                inode: f.next()?.parse().ok()?,
            };
            if f.next().is_some() || name.is_empty() {
                return None;
            }
            entries.insert(name, fp);
        }
        Some(Self { entries })
    }

    fn render(&self) -> String {
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        let mut lines = String::new();
        for n in names {
            let fp = self.entries[n];
            lines.push_str(&format!(
                "{n} {} {} {} {}\n",
                fp.size, fp.mtime_ns, fp.ctime_ns, fp.inode
            ));
        }
        format!(
            "{MAGIC}\n{:08x}\n{lines}",
            crc32fast::hash(lines.as_bytes())
        )
    }

    /// Whether `name` was verified when it looked as it does now.
    pub(crate) fn holds(&self, name: &str, now: Fingerprint) -> bool {
        self.entries.get(name) == Some(&now)
    }

    /// Whether the ledger has an entry for `name` (in any form).
    pub(crate) fn names(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Records `name` as verified with the fingerprint it has now.
    pub(crate) fn insert(&mut self, name: &str, fp: Fingerprint) {
        self.entries.insert(name.to_owned(), fp);
    }

    /// Keeps only the entries of files that exist now (named in `live`).
    pub(crate) fn retain_live(&mut self, live: &[String]) {
        let live: HashSet<&str> = live.iter().map(String::as_str).collect();
        self.entries.retain(|n, _| live.contains(n.as_str()));
    }

    /// Writes the ledger into `dir` (best effort: a read-only directory or a full disk only
    /// means the next open reads the files again). Atomic: a temporary file renamed over it.
    pub(crate) fn save(&self, dir: &Path) {
        let tmp = dir.join(format!("{LEDGER_FILE}.tmp-{}", std::process::id()));
        let r = std::fs::write(&tmp, self.render())
            .and_then(|()| std::fs::rename(&tmp, dir.join(LEDGER_FILE)));
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("cannot write {}: {e}", dir.join(LEDGER_FILE).display());
        }
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(size: u64) -> Fingerprint {
        Fingerprint {
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: 1_700_000_000_223_456_789,
            inode: 42,
        }
    }

    #[test]
    fn round_trip_and_damage_is_ignored() {
        let mut l = Ledger::default();
        l.insert("000011.sst", fp(100));
        l.insert("000012.sst", fp(200));
        let text = l.render();
        let back = Ledger::parse(&text).unwrap();
        assert!(back.holds("000011.sst", fp(100)));
        assert!(back.holds("000012.sst", fp(200)));
        assert!(!back.holds("000012.sst", fp(201)));
        assert!(!back.holds("000013.sst", fp(200)));
        // Any changed byte of the lines fails the CRC; a changed header is not a ledger.
        let bad = text.replace("200 ", "300 ");
        assert!(Ledger::parse(&bad).is_none());
        assert!(Ledger::parse(&text.replacen("files 2", "files 3", 1)).is_none());
        assert!(Ledger::parse(&text[..text.len() - 3]).is_none());
        assert!(Ledger::parse("").is_none());
    }

    #[test]
    fn save_load_and_retain() {
        let dir = std::env::temp_dir().join(format!("ct-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Ledger::load(&dir).len(), 0);
        let mut l = Ledger::default();
        l.insert("a.sst", fp(1));
        l.insert("b.sst", fp(2));
        l.retain_live(&["b.sst".to_owned()]);
        l.save(&dir);
        let back = Ledger::load(&dir);
        assert_eq!(back.len(), 1);
        assert!(back.holds("b.sst", fp(2)));
        std::fs::write(dir.join(LEDGER_FILE), "garbage").unwrap();
        assert_eq!(Ledger::load(&dir).len(), 0);
        // Not a regular file: a device that never ends, a FIFO that would block; ignored at
        // once (this test would hang or run out of memory otherwise).
        std::fs::remove_file(dir.join(LEDGER_FILE)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join(LEDGER_FILE)).unwrap();
        assert_eq!(Ledger::load(&dir).len(), 0);
        std::fs::remove_file(dir.join(LEDGER_FILE)).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.join(LEDGER_FILE))
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(Ledger::load(&dir).len(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
