//! Small files that several processes share: atomic replacement and advisory locks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// Replaces `path` with `bytes` atomically and durably: a temporary file is written and synced,
/// renamed over `path`, and the directory is synced. A reader sees the old or the new content,
/// never a mix; after a crash the file is one or the other.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::invalid(format!("{} has no directory", path.display())))?;
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("cannot write {}", path.display()), e)
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Syncs a directory (so that a rename or a new entry in it is durable).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a whole small file; `None` when it does not exist. Files larger than `limit` are
/// `Corruption` (they are never written that large).
pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > limit => Err(Error::corruption(format!(
            "{} is {} bytes, more than the {limit} it can be",
            path.display(),
            m.len()
        ))),
        Ok(_) => match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// An exclusive advisory lock (`flock`) on a file, released when dropped or when the process
/// dies. Two handles conflict even inside one process (each opens its own file description).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

impl FileLock {
    /// Takes the lock, or `None` when someone holds it.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("cannot lock {}", path.display()), e))
            }
        }
    }

    /// Takes the lock, waiting at most `timeout` for the holder (these locks are only held for
    /// a few file operations).
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(l) = Self::try_acquire(path)? {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!("{} stayed locked for {timeout:?}", path.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}
