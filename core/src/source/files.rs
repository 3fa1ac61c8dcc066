//! Binlog files on disk: a list of files or a directory (its `.index`, else numeric suffix
//! order), read into memory (gzip archives inflated).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// One binlog file of a source, with its file index (the `file_index` of checkpoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinlogFile {
    /// Where the file is.
    pub path: PathBuf,
    /// The numeric suffix of the file name (`mysql-bin.000188` is 188); for names without one,
    /// the file's 1-based position in the input list.
    pub index: u32,
}

/// The numeric suffix of a binlog file name: `mysql-bin.000188` gives 188.
#[must_use]
pub fn numeric_suffix(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (_, ext) = name.rsplit_once('.')?;
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ext.parse().ok()
}

/// Resolves inputs (files and directories) to an ordered list of binlog files.
///
/// A directory contributes the files its `*.index` lists, in that order; without an index, the
/// files whose names end in a numeric suffix, ordered by that number.
///
/// # Errors
/// `NotFound` for a missing input or an index entry that is not in the directory; `InvalidArgument`
/// for a directory with no binlog files.
pub fn resolve_inputs(inputs: &[PathBuf]) -> Result<Vec<BinlogFile>> {
    let mut paths = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .map_err(|e| Error::io(format!("cannot open {}", input.display()), e))?;
        if meta.is_dir() {
            paths.extend(directory_files(input)?);
        } else {
            paths.push(input.clone());
        }
    }
    Ok(paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let index = numeric_suffix(&path).unwrap_or(u32::try_from(i + 1).unwrap_or(u32::MAX));
            BinlogFile { path, index }
        })
        .collect())
}

fn directory_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    let mut names = Vec::new();
    let mut index_file = None;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        if path.extension().is_some_and(|e| e == "index") {
            index_file = Some(path);
        } else if let Some(n) = numeric_suffix(&path) {
            names.push((n, path));
        }
    }
    if let Some(index) = index_file {
        let text = std::fs::read_to_string(&index)
            .map_err(|e| Error::io(format!("cannot read {}", index.display()), e))?;
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            // Index entries are paths as the server saw them; the file is looked up by name in
            // this directory, which is where the index is.
            let name = Path::new(line).file_name().ok_or_else(|| {
                Error::corruption(format!("bad entry {line:?} in {}", index.display()))
            })?;
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} lists {line:?}, which is not in {}",
                        index.display(),
                        dir.display()
                    ),
                ));
            }
            out.push(path);
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    if names.is_empty() {
        return Err(Error::invalid(format!(
            "{} has no binlog files (no .index and no names with a numeric suffix)",
            dir.display()
        )));
    }
    names.sort();
    Ok(names.into_iter().map(|(_, p)| p).collect())
}

/// The bytes of one binlog file, read into memory: as they are on disk (`Plain`, which may grow
/// while the server writes the file), or inflated from a gzip-compressed file.
///
/// Not memory-mapped: a map is `unsafe` (another program truncating the file would fault the
/// reader), and this crate has no `unsafe` code. A followed file that grows is extended by
/// reading only its new bytes.
pub(crate) enum FileBytes {
    Plain(Vec<u8>),
    Inflated(Vec<u8>),
}

/// Bytes compared at the start, and just before the end, of what was read, to tell that a
/// grown file still continues those bytes.
const SAME_FILE_CHECK: usize = 512;

impl FileBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Plain(v) | Self::Inflated(v) => v,
        }
    }

    /// Reads what was appended to a plain file since it was read (up to `max` bytes in all).
    /// Returns whether there were new bytes. Inflated files never grow.
    pub(crate) fn extend(&mut self, path: &Path, max: u64) -> Result<bool> {
        let Self::Plain(v) = self else {
            return Ok(false);
        };
        let mut f = match File::open(path) {
            Ok(f) => f,
            // Purged or archived while being read: what was read stands, nothing is added.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let len = f
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        let have = v.len() as u64;
        if len <= have {
            return Ok(false);
        }
        if !continues(&mut f, v)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
        {
            // Another file under the same name (RESET MASTER starts over at .000001): its bytes
            // do not continue the ones read.
            return Err(Error::new(
                ErrorKind::Corruption,
                format!(
                    "{} was replaced by another file while it was being read",
                    path.display()
                ),
            ));
        }
        if len > max {
            return Err(too_big(path, max));
        }
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(have))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        f.take(len - have)
            .read_to_end(v)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        Ok(v.len() as u64 > have)
    }
}

/// Whether `f` still starts with the first bytes of `had` and holds its last bytes at the same
/// place (a file that grew, not another file under the same name: a copy that replaced it by
/// rename with more bytes still counts as the same).
fn continues(f: &mut File, had: &[u8]) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let head = &had[..had.len().min(SAME_FILE_CHECK)];
    let tail_at = had.len().saturating_sub(SAME_FILE_CHECK);
    let tail = &had[tail_at..];
    let mut buf = vec![0u8; SAME_FILE_CHECK];
    for (at, want) in [(0, head), (tail_at, tail)] {
        f.seek(SeekFrom::Start(at as u64))?;
        let got = &mut buf[..want.len()];
        f.read_exact(got)?;
        if got != want {
            return Ok(false);
        }
    }
    Ok(true)
}

fn too_big(path: &Path, max: u64) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!(
            "{} is (or inflates to) more than {max} bytes",
            path.display()
        ),
    )
}

/// Opens a binlog file. Gzip files (as binlog archives often are) are inflated in memory. Either
/// way at most `max_inflated` bytes are read.
pub(crate) fn open_file(path: &Path, max_inflated: u64) -> Result<FileBytes> {
    let file =
        File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let mut head = [0u8; 2];
    let is_gzip = len >= 2 && {
        let mut f = &file;
        f.read_exact(&mut head)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        head == [0x1f, 0x8b]
    };
    let mut f = &file;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if is_gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(f))
            .take(max_inflated + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::corruption(format!("cannot gunzip {}: {e}", path.display())))?;
        if out.len() as u64 > max_inflated {
            return Err(too_big(path, max_inflated));
        }
        return Ok(FileBytes::Inflated(out));
    }
    if len > max_inflated {
        return Err(too_big(path, max_inflated));
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(max_inflated)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(FileBytes::Plain(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(numeric_suffix(Path::new("/x/mysql-bin.000188")), Some(188));
        assert_eq!(numeric_suffix(Path::new("log.bin")), None);
        assert_eq!(
            numeric_suffix(Path::new("mysql-bin.000001.decoded.txt")),
            None
        );
    }
}
