//! The crate's error type: a stable [`ErrorKind`] plus a human-readable detail.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, as a stable code. Callers (and the C API) match on this; variants are only
/// ever added.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An argument or option was invalid.
    InvalidArgument,
    /// A file, group, record or position does not exist.
    NotFound,
    /// The input ends in the middle of an event; retry later from the reported position.
    Incomplete,
    /// The input is malformed (bad checksum, impossible length, undecodable event).
    Corruption,
    /// The input uses a format or event this library does not support.
    Unsupported,
    /// The binlog and the table metadata do not agree.
    SchemaMismatch,
    /// A read asked for a position outside the stored range.
    OutOfRange,
    /// An operating-system I/O error.
    Io,
    /// The resource is held by another writer.
    Locked,
    /// The store refused writes after an earlier storage failure.
    Poisoned,
    /// A size or count limit set by an option was exceeded.
    LimitExceeded,
    /// The binlog reports an incident (a server-side failure that may have lost changes).
    Incident,
    /// A bug in this library.
    Internal,
    /// Wrong credentials (which part was wrong is never said).
    Unauthorized,
    /// Another consumer of the group is active (non-blocking mode), or this consumer lost the
    /// group to a standby.
    Busy,
    /// A group (or other named object) with that name exists already.
    AlreadyExists,
    /// A live source's precheck found the server, account or configuration unfit (the message
    /// lists each failed item and its fix).
    PrecheckFailed,
}

impl ErrorKind {
    /// A short lower-case name for the kind, stable across releases.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid argument",
            Self::NotFound => "not found",
            Self::Incomplete => "incomplete",
            Self::Corruption => "corruption",
            Self::Unsupported => "unsupported",
            Self::SchemaMismatch => "schema mismatch",
            Self::OutOfRange => "out of range",
            Self::Io => "I/O error",
            Self::Locked => "locked",
            Self::Poisoned => "poisoned",
            Self::LimitExceeded => "limit exceeded",
            Self::Incident => "incident",
            Self::Internal => "internal error",
            Self::Unauthorized => "unauthorized",
            Self::Busy => "busy",
            Self::AlreadyExists => "already exists",
            Self::PrecheckFailed => "precheck failed",
        }
    }
}

/// Where in the input an error happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The binlog file, when known.
    pub file: Option<PathBuf>,
    /// The byte offset of the event (or of the bad bytes) in that file.
    pub offset: Option<u64>,
}

struct ErrorInner {
    message: String,
    location: Location,
    /// For [`ErrorKind::Incomplete`]: the offset to resume reading from.
    resume_offset: Option<u64>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The error type of every fallible public function.
pub struct Error {
    kind: ErrorKind,
    inner: Box<ErrorInner>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a sentence describing it.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            inner: Box::new(ErrorInner {
                message: message.into(),
                location: Location::default(),
                resume_offset: None,
                source: None,
            }),
        }
    }

    /// The stable kind of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the location.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Where in the input the error happened, when known.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// For an [`ErrorKind::Incomplete`] error: the offset in [`Location::file`] to resume from.
    #[must_use]
    pub fn resume_offset(&self) -> Option<u64> {
        self.inner.resume_offset
    }

    /// Attaches the file the error happened in (kept if one is already set).
    #[must_use]
    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        if self.inner.location.file.is_none() {
            self.inner.location.file = Some(file.into());
        }
        self
    }

    /// Attaches the byte offset the error happened at (kept if one is already set).
    #[must_use]
    pub fn at_offset(mut self, offset: u64) -> Self {
        if self.inner.location.offset.is_none() {
            self.inner.location.offset = Some(offset);
        }
        self
    }

    /// Sets the offset to resume reading from.
    #[must_use]
    pub fn with_resume_offset(mut self, offset: u64) -> Self {
        self.inner.resume_offset = Some(offset);
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self::new(kind, format!("{context}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        let loc = &self.inner.location;
        match (&loc.file, loc.offset) {
            (Some(file), Some(off)) => write!(f, " (in {} at offset {off})", file.display())?,
            (Some(file), None) => write!(f, " (in {})", file.display())?,
            (None, Some(off)) => write!(f, " (at offset {off})")?,
            (None, None) => {}
        }
        if let Some(resume) = self.inner.resume_offset {
            write!(f, "; resume from offset {resume}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error {{ kind: {:?}, message: {:?}",
            self.kind,
            self.to_string()
        )?;
        if let Some(src) = &self.inner.source {
            write!(f, ", source: {src}")?;
        }
        f.write_str(" }")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
