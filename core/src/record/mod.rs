//! The change record: one row change, DDL statement or transaction marker, with exact values.
//!
//! Values keep what the server wrote: strings stay raw bytes with their charset, DECIMAL stays an
//! exact string at the column's scale, temporal values keep every part. Conversions to JSON and to
//! DTS Avro live in [`json`] and [`avro`].

pub mod avro;
pub(crate) mod charset;
pub mod codec;
pub mod json;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A position in the source binlog: `offset@file_index` (offset in `mysql-bin.<file_index>`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Checkpoint {
    /// The numeric suffix of the binlog file.
    pub file_index: u32,
    /// The byte offset in that file.
    pub offset: u64,
}

impl Checkpoint {
    /// A checkpoint at `offset` in file number `file_index`.
    #[must_use]
    pub fn new(file_index: u32, offset: u64) -> Self {
        Self { file_index, offset }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.offset, self.file_index)
    }
}

impl FromStr for Checkpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid(format!("bad checkpoint {s:?}: expected OFFSET@FILE_INDEX"));
        let (offset, file) = s.trim().split_once('@').ok_or_else(bad)?;
        Ok(Self {
            offset: offset.parse().map_err(|_| bad())?,
            file_index: file.parse().map_err(|_| bad())?,
        })
    }
}

/// The kind of change a record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// A row was inserted.
    Insert,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
    /// A schema change (or other DDL statement).
    Ddl,
    /// A transaction started.
    Begin,
    /// A transaction committed.
    Commit,
    /// The source was idle; no change.
    Heartbeat,
}

impl Op {
    /// The upper-case name used in JSON and Avro (`INSERT`, `UPDATE`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Ddl => "DDL",
            Self::Begin => "BEGIN",
            Self::Commit => "COMMIT",
            Self::Heartbeat => "HEARTBEAT",
        }
    }

    /// Whether this is a row change (INSERT, UPDATE or DELETE).
    #[must_use]
    pub fn is_dml(self) -> bool {
        matches!(self, Self::Insert | Self::Update | Self::Delete)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "INSERT" => Self::Insert,
            "UPDATE" => Self::Update,
            "DELETE" => Self::Delete,
            "DDL" => Self::Ddl,
            "BEGIN" => Self::Begin,
            "COMMIT" => Self::Commit,
            "HEARTBEAT" => Self::Heartbeat,
            _ => return Err(Error::invalid(format!("unknown change type {s:?}"))),
        })
    }
}

/// How a column's values are represented; derived from the binlog column type and metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT.
    Integer,
    /// FLOAT or DOUBLE.
    Float,
    /// DECIMAL / NUMERIC.
    Decimal,
    /// BIT(n).
    Bit,
    /// YEAR.
    Year,
    /// DATE.
    Date,
    /// TIME.
    Time,
    /// DATETIME.
    DateTime,
    /// TIMESTAMP (an instant, shown in UTC).
    Timestamp,
    /// CHAR / VARCHAR with a character set.
    String,
    /// BINARY / VARBINARY.
    Binary,
    /// TINYTEXT .. LONGTEXT.
    Text,
    /// TINYBLOB .. LONGBLOB.
    Blob,
    /// ENUM.
    Enum,
    /// SET.
    Set,
    /// JSON (MySQL binary JSON, or MariaDB's JSON alias of LONGTEXT).
    Json,
    /// GEOMETRY and the spatial types.
    Geometry,
    /// MySQL 9 VECTOR (raw little-endian float32 bytes).
    Vector,
    /// The NULL type.
    Null,
}

/// One column of a record's table, as the binlog (or a schema source) describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The column name; `@1`, `@2`, ... when the binlog carries no names.
    pub name: String,
    /// The MySQL type code (DTS `dataTypeNumber`).
    pub type_code: u8,
    /// A SQL-like type name (`int unsigned`, `varchar(20)`, `decimal(10,2)`, ...).
    pub type_name: String,
    /// How values of this column are represented.
    pub kind: ColumnKind,
    /// The MySQL character set name of string columns (`utf8mb4`, `latin1`, `gbk`, `binary`),
    /// `None` for non-string columns or when the binlog does not say.
    pub charset: Option<&'static str>,
    /// The collation id, when known.
    pub collation: Option<u16>,
    /// Whether the column is UNSIGNED (`None` when the binlog does not say).
    pub unsigned: Option<bool>,
    /// Whether the column may hold NULL.
    pub nullable: bool,
    /// Whether the column is part of the primary key.
    pub primary_key: bool,
}

/// One column of a table as a schema history records it (from `information_schema`), for
/// binlogs whose TABLE_MAP carries no column names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryColumn {
    /// The column name.
    pub name: String,
    /// information_schema `DATA_TYPE` (`int`, `varchar`, `enum`, ...).
    pub data_type: String,
    /// UNSIGNED.
    pub unsigned: bool,
    /// The collation id of string columns.
    pub collation_id: Option<u16>,
    /// ENUM or SET labels, in order.
    pub values: Vec<String>,
    /// Part of the primary key.
    pub primary_key: bool,
}

/// The table a row record belongs to: names and columns, shared by all records of one TABLE_MAP.
#[derive(Clone, Debug, PartialEq)]
pub struct TableInfo {
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// The columns, in table order.
    pub fields: Vec<Field>,
    /// Indexes into `fields` of the primary-key columns, in key order.
    pub primary_key: Vec<usize>,
    /// True when the binlog carried no column names (MINIMAL metadata or MySQL 5.x): names are
    /// `@1`, `@2`, ..., and signedness and charsets may be unknown.
    pub names_missing: bool,
    /// Pre-rendered JSON fragments of this table (computed once, on first use).
    pub(crate) json: json::TableJson,
}

impl TableInfo {
    /// A table description.
    #[must_use]
    pub fn new(
        database: String,
        table: String,
        fields: Vec<Field>,
        primary_key: Vec<usize>,
        names_missing: bool,
    ) -> Self {
        Self {
            database,
            table,
            fields,
            primary_key,
            names_missing,
            json: json::TableJson::default(),
        }
    }
}

/// An exact DECIMAL value: MySQL's binary form plus precision and scale, rendered on demand as a
/// plain string with exactly `scale` fraction digits (`"348.00"`, never exponent form).
#[derive(Clone, Copy)]
pub struct Decimal {
    raw: [u8; 32],
    len: u8,
    precision: u8,
    scale: u8,
}

impl Decimal {
    /// From MySQL's binary DECIMAL(precision, scale); checks size and digits.
    pub(crate) fn from_binary(raw: &[u8], precision: u8, scale: u8) -> Result<Self> {
        // Validate once here so rendering cannot fail later.
        crate::binlog::rows::check_decimal(raw, precision, scale)?;
        let mut d = Self {
            raw: [0; 32],
            len: 0,
            precision,
            scale,
        };
        let len = raw.len().min(32);
        d.raw[..len].copy_from_slice(&raw[..len]);
        d.len = len as u8;
        Ok(d)
    }

    /// MySQL's binary form.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        self.raw.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The column's precision (total digits).
    #[must_use]
    pub fn precision(&self) -> u8 {
        self.precision
    }

    /// The column's scale (fraction digits).
    #[must_use]
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Appends the plain decimal text to `out`.
    pub fn write_to(&self, out: &mut String) {
        let raw = &self.raw[..usize::from(self.len)];
        // Checked in `from_binary`; an error here cannot happen, and writes nothing if it did.
        let _ = crate::binlog::rows::render_decimal(raw, self.precision, self.scale, out);
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(usize::from(self.precision) + 3);
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.scale == other.scale && self.to_string() == other.to_string()
    }
}

/// A column value, exact.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// The column is not present in this image (MINIMAL/NOBLOB row image). Not NULL.
    Missing,
    /// A signed integer (or an integer whose signedness is unknown).
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, exact, at the column's scale (`-348.00`); see [`Decimal`].
    Decimal(Decimal),
    /// BIT value (up to 64 bits).
    Bit(u64),
    /// YEAR (0 for the zero year).
    Year(u16),
    /// DATE; zero parts are kept (`0000-00-00`).
    Date {
        /// Year.
        year: u16,
        /// Month, 0-12.
        month: u8,
        /// Day, 0-31.
        day: u8,
    },
    /// TIME, possibly negative and beyond 24 hours.
    Time {
        /// Whether the value is negative.
        negative: bool,
        /// Hours, up to 838.
        hour: u32,
        /// Minutes.
        minute: u8,
        /// Seconds.
        second: u8,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0-6.
        fsp: u8,
    },
    /// DATETIME (wall clock, no zone); zero parts are kept.
    DateTime {
        /// Year.
        year: u16,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
        /// Hour.
        hour: u8,
        /// Minute.
        minute: u8,
        /// Second.
        second: u8,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0-6.
        fsp: u8,
    },
    /// TIMESTAMP: seconds since the epoch (UTC) plus microseconds. `0` is the zero timestamp.
    Timestamp {
        /// Seconds since 1970-01-01 00:00:00 UTC.
        seconds: i64,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column, 0-6.
        fsp: u8,
    },
    /// CHAR, VARCHAR, TEXT, BINARY, VARBINARY, BLOB, VECTOR: raw bytes in the column's charset.
    /// (Cheap to clone: values of one event share one buffer.)
    Bytes(bytes::Bytes),
    /// ENUM: the 1-based index and, when the binlog names the members, the label bytes.
    Enum {
        /// 1-based member index (0 is the empty error value).
        index: u16,
        /// The member's label, raw bytes in the column's charset.
        label: Option<Vec<u8>>,
    },
    /// SET: the member bitmask and, when the binlog names the members, the comma-joined labels.
    Set {
        /// Member bitmask.
        bits: u64,
        /// Comma-joined member labels, raw bytes in the column's charset.
        labels: Option<Vec<u8>>,
    },
    /// JSON as text (MySQL binary JSON decoded, partial updates applied).
    Json(String),
    /// A partial JSON update whose before-image did not carry the document
    /// (`binlog_row_image=MINIMAL`): the change itself, as a JSON array of
    /// `{"op", "path", "value"}`. The new document is not in the binlog.
    JsonDiff(String),
    /// GEOMETRY: the SRID and the OGC WKB without MySQL's SRID prefix.
    Geometry {
        /// Spatial reference id.
        srid: u32,
        /// Well-known binary.
        wkb: Vec<u8>,
    },
}

impl Value {
    /// Whether the value is SQL NULL.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

/// Session settings and text of a DDL statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ddl {
    /// The statement text as logged.
    pub statement: String,
    /// The session settings it ran with, as SQL (`SET TIMESTAMP=...; SET @@session.sql_mode=...`).
    pub session: String,
}

/// Flags describing how complete a record is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordFlags {
    /// Column names were missing in the binlog (`@1`, `@2`, ...).
    pub names_missing: bool,
    /// The row image is not FULL: some columns are [`Value::Missing`].
    pub partial_image: bool,
}

/// One change, in binlog order.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRecord {
    /// Sequence number in the store (0 when the record did not come from a store).
    pub seq: u64,
    /// Where the event is: `end_log_pos@file_index` of the event that carries the change.
    pub checkpoint: Checkpoint,
    /// Where the transaction starts: the offset of its first event (GTID or BEGIN); resuming
    /// from here replays the whole transaction.
    pub safe_checkpoint: Checkpoint,
    /// Event time from the binlog header, in seconds since the epoch.
    pub timestamp: u32,
    /// What happened.
    pub op: Op,
    /// The table (for row changes), shared by the records of one table map. For DDL, the
    /// database is in [`ChangeRecord::database`].
    pub table: Option<Arc<TableInfo>>,
    /// For DDL: the statement's default database (`None` for rows: see [`Self::database_name`]).
    pub database: Option<String>,
    /// Before image, one value per field (UPDATE, DELETE).
    pub before: Option<Vec<Value>>,
    /// After image, one value per field (INSERT, UPDATE).
    pub after: Option<Vec<Value>>,
    /// The DDL statement, for [`Op::Ddl`].
    pub ddl: Option<Ddl>,
    /// The GTID of the transaction, when the binlog has one.
    pub gtid: Option<Arc<str>>,
    /// The XID of the transaction, when it ended with one.
    pub xid: Option<u64>,
    /// The originating connection's thread id, when known.
    pub thread_id: Option<u32>,
    /// The originating server id.
    pub server_id: u32,
    /// The server version from the FORMAT_DESCRIPTION event.
    pub server_version: Arc<str>,
    /// Completeness flags.
    pub flags: RecordFlags,
}

impl ChangeRecord {
    /// The database: the row's table's database, or a DDL statement's default database.
    #[must_use]
    pub fn database_name(&self) -> Option<&str> {
        match self.table.as_deref() {
            Some(t) => Some(t.database.as_str()),
            None => self.database.as_deref(),
        }
    }

    /// The table name, for row changes.
    #[must_use]
    pub fn table_name(&self) -> Option<&str> {
        self.table.as_deref().map(|t| t.table.as_str())
    }

    /// The fields of the row's table (empty for DDL and markers).
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        self.table.as_deref().map_or(&[], |t| t.fields.as_slice())
    }

    /// The primary-key column names.
    #[must_use]
    pub fn primary_key_names(&self) -> Vec<&str> {
        match self.table.as_deref() {
            Some(t) => t
                .primary_key
                .iter()
                .filter_map(|&i| t.fields.get(i).map(|f| f.name.as_str()))
                .collect(),
            None => Vec::new(),
        }
    }
}
