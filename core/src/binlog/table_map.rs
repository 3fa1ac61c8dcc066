//! TABLE_MAP events to table schemas: column decoders plus the public [`TableInfo`].

use std::collections::HashMap;
use std::sync::Arc;

use mysql_common::binlog::events::TableMapEvent;
use mysql_common::constants::ColumnType;

use crate::binlog::rows::Cursor;
use crate::error::{Error, Result};
use crate::record::charset::charset_of_collation;
use crate::record::{ColumnKind, Field, TableInfo};

/// How to read one column's bytes from a row image.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ColumnDecoder {
    /// Integer of `bytes` bytes (1, 2, 3, 4, 8).
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Bit {
        nbits: u16,
    },
    Year,
    Date,
    /// Pre-5.6 TIME: 3 bytes, HHMMSS as an integer.
    TimeOld,
    /// Pre-5.6 DATETIME: 8 bytes, YYYYMMDDhhmmss as an integer.
    DateTimeOld,
    /// Pre-5.6 TIMESTAMP: 4 bytes of epoch seconds.
    TimestampOld,
    Time2 {
        fsp: u8,
    },
    DateTime2 {
        fsp: u8,
    },
    Timestamp2 {
        fsp: u8,
    },
    /// VARCHAR/VARBINARY: a 1- or 2-byte length prefix.
    VarString {
        len_bytes: u8,
    },
    /// CHAR/BINARY: length prefix by max byte length; BINARY is padded with zero bytes.
    FixString {
        len_bytes: u8,
        max_len: u16,
        pad_binary: bool,
    },
    /// BLOB/TEXT/VECTOR: a 1..4-byte length prefix.
    Blob {
        len_bytes: u8,
    },
    /// MariaDB's `COMPRESSED` VARCHAR/BLOB/TEXT: the length prefix, then the compressed form
    /// (see `rows::uncompress_column`), which inflates to at most `max_len` bytes.
    Compressed {
        len_bytes: u8,
        max_len: u64,
    },
    /// MySQL binary JSON with its length prefix.
    Json {
        len_bytes: u8,
    },
    /// GEOMETRY: length prefix, then SRID and WKB.
    Geometry {
        len_bytes: u8,
    },
    Enum {
        pack: u8,
        labels: Option<Arc<[Vec<u8>]>>,
    },
    Set {
        pack: u8,
        labels: Option<Arc<[Vec<u8>]>>,
    },
    Null,
}

/// A decoded TABLE_MAP: what the row decoder needs, plus the public table description.
#[derive(Clone, Debug)]
pub(crate) struct TableSchema {
    pub(crate) table_id: u64,
    pub(crate) info: Arc<TableInfo>,
    pub(crate) decoders: Vec<ColumnDecoder>,
    /// Number of JSON columns (partial-update bitmaps have one bit per JSON column).
    pub(crate) json_columns: usize,
}

/// table id -> schema, for the current binlog file, with the raw TABLE_MAP body it came from:
/// the server repeats the same TABLE_MAP before every statement, and an identical body is not
/// parsed again.
#[derive(Default, Debug)]
pub(crate) struct TableMapCache {
    tables: HashMap<u64, (Vec<u8>, Arc<TableSchema>)>,
}

impl TableMapCache {
    pub(crate) fn get(&self, table_id: u64) -> Option<&Arc<TableSchema>> {
        self.tables.get(&table_id).map(|(_, s)| s)
    }

    /// The cached schema whose TABLE_MAP body is exactly `body`.
    pub(crate) fn get_same(&self, body: &[u8], post_header_len: u8) -> Option<&Arc<TableSchema>> {
        let id_len = if post_header_len == 6 { 4 } else { 6 };
        let id = crate::binlog::rows::le(body.get(..id_len)?);
        self.tables
            .get(&id)
            .filter(|(b, _)| b.as_slice() == body)
            .map(|(_, s)| s)
    }

    /// Adds a table map parsed from `body`; an identical schema already cached is kept
    /// (sharing its `Arc<TableInfo>`).
    pub(crate) fn insert(&mut self, schema: TableSchema, body: &[u8]) -> Arc<TableSchema> {
        if let Some((_, old)) = self.tables.get(&schema.table_id) {
            if old.info == schema.info && old.decoders == schema.decoders {
                let old = Arc::clone(old);
                self.tables
                    .insert(schema.table_id, (body.to_vec(), Arc::clone(&old)));
                return old;
            }
        }
        let schema = Arc::new(schema);
        self.tables
            .insert(schema.table_id, (body.to_vec(), Arc::clone(&schema)));
        schema
    }

    /// Forgets every table map (on rotation and at the end of a statement with STMT_END).
    pub(crate) fn clear(&mut self) {
        self.tables.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.tables.len()
    }
}

#[derive(Default)]
struct OptionalMeta {
    signedness: Option<Vec<bool>>,
    charsets: Option<Vec<u16>>,
    enum_set_charsets: Option<Vec<u16>>,
    names: Option<Vec<String>>,
    enum_values: Vec<Vec<Vec<u8>>>,
    set_values: Vec<Vec<Vec<u8>>>,
    primary_key: Vec<usize>,
    has_pk_info: bool,
}

/// The parts of a TABLE_MAP body: the column types (a byte each), the column metadata block,
/// and the optional metadata (everything after the null bitmap).
fn table_map_parts(body: &[u8], post_header_len: u8) -> Result<(&[u8], &[u8], &[u8])> {
    let mut c = Cursor::new(body);
    c.take(if post_header_len == 6 { 4 } else { 6 })?;
    c.take(2)?;
    let db = usize::from(c.u8()?);
    c.take(db + 1)?;
    let t = usize::from(c.u8()?);
    c.take(t + 1)?;
    let n =
        usize::try_from(c.lenenc()?).map_err(|_| Error::corruption("TABLE_MAP column count"))?;
    let types = c.take(n)?;
    let meta =
        usize::try_from(c.lenenc()?).map_err(|_| Error::corruption("TABLE_MAP metadata length"))?;
    let meta = c.take(meta)?;
    c.take(n.div_ceil(8))?;
    Ok((types, meta, c.rest()))
}

/// Locates the optional metadata in a TABLE_MAP body: everything after the null bitmap.
fn optional_metadata(body: &[u8], post_header_len: u8) -> Result<&[u8]> {
    Ok(table_map_parts(body, post_header_len)?.2)
}

/// MariaDB's binlog types of `COMPRESSED` columns (which `mysql_common` does not know).
const MARIADB_BLOB_COMPRESSED: u8 = 140;
const MARIADB_VARCHAR_COMPRESSED: u8 = 141;

/// Bytes of column metadata per binlog column type (the servers' `save_field_metadata`).
fn metadata_len(t: u8) -> Option<usize> {
    match t {
        0..=3 | 6..=14 => Some(0),
        4 | 5 | 17..=19 | 140 | 242 | 245 | 249..=252 | 255 => Some(1),
        15 | 16 | 141 | 246..=248 | 253 | 254 => Some(2),
        _ => None,
    }
}

/// One column of a TABLE_MAP: its binlog type, real type, metadata, and whether it is a
/// MariaDB `COMPRESSED` column.
type RawColumn<'a> = (ColumnType, ColumnType, &'a [u8], bool);

/// Each column's binlog type, real type, metadata and whether it is a MariaDB `COMPRESSED`
/// column, read from the body itself: for tables with compressed columns, whose types
/// `mysql_common` cannot walk past. A compressed VARCHAR is typed VARCHAR and a compressed
/// BLOB/TEXT BLOB; their values are inflated by the row decoder.
fn columns_with_compressed(body: &[u8], post_header_len: u8) -> Result<Vec<RawColumn<'_>>> {
    let (types, meta, _) = table_map_parts(body, post_header_len)?;
    let mut at = 0usize;
    let mut out = Vec::with_capacity(types.len());
    for (i, &t) in types.iter().enumerate() {
        let len = metadata_len(t).ok_or_else(|| {
            Error::unsupported(format!(
                "TABLE_MAP column {}: unknown column type {t}",
                i + 1
            ))
        })?;
        let m = meta
            .get(at..at + len)
            .ok_or_else(|| Error::corruption("TABLE_MAP metadata shorter than its columns"))?;
        at += len;
        let (raw, compressed) = match t {
            MARIADB_BLOB_COMPRESSED => (ColumnType::MYSQL_TYPE_BLOB, true),
            MARIADB_VARCHAR_COMPRESSED => (ColumnType::MYSQL_TYPE_VARCHAR, true),
            _ => (
                ColumnType::try_from(t).map_err(|_| {
                    Error::unsupported(format!(
                        "TABLE_MAP column {}: unknown column type {t}",
                        i + 1
                    ))
                })?,
                false,
            ),
        };
        let real = real_type(raw, m);
        out.push((raw, real, m, compressed));
    }
    Ok(out)
}

/// The type a column's values have: ENUM and SET are logged as STRING, with the real type in
/// the first metadata byte; DATE is read as NEWDATE.
fn real_type(raw: ColumnType, meta: &[u8]) -> ColumnType {
    match raw {
        ColumnType::MYSQL_TYPE_STRING => match meta_u8(meta, 0) {
            0xf7 => ColumnType::MYSQL_TYPE_ENUM,
            0xf8 => ColumnType::MYSQL_TYPE_SET,
            _ => ColumnType::MYSQL_TYPE_STRING,
        },
        ColumnType::MYSQL_TYPE_DATE => ColumnType::MYSQL_TYPE_NEWDATE,
        other => other,
    }
}

fn lenenc_usize(c: &mut Cursor<'_>) -> Result<usize> {
    usize::try_from(c.lenenc()?).map_err(|_| Error::corruption("optional metadata length"))
}

fn read_charsets(v: &[u8], default_form: bool, count: usize) -> Result<Vec<u16>> {
    let mut c = Cursor::new(v);
    if default_form {
        let default = c.lenenc()? as u16;
        let mut out = vec![default; count];
        while !c.is_empty() {
            let idx = lenenc_usize(&mut c)?;
            let cs = c.lenenc()? as u16;
            if let Some(slot) = out.get_mut(idx) {
                *slot = cs;
            }
        }
        Ok(out)
    } else {
        let mut out = Vec::with_capacity(count.min(v.len()));
        while !c.is_empty() {
            out.push(c.lenenc()? as u16);
        }
        Ok(out)
    }
}

/// Per ENUM (or SET) column: its member labels. Counts are checked against the bytes present,
/// so a malformed count cannot make us allocate.
fn read_str_values(v: &[u8]) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut c = Cursor::new(v);
    let mut cols = Vec::new();
    while !c.is_empty() {
        let n = lenenc_usize(&mut c)?;
        if n > v.len() {
            return Err(Error::corruption(
                "ENUM/SET member count larger than the metadata",
            ));
        }
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let len = lenenc_usize(&mut c)?;
            labels.push(c.take(len)?.to_vec());
        }
        cols.push(labels);
    }
    Ok(cols)
}

/// Parses TABLE_MAP optional metadata (TLV fields). Unknown fields are skipped; a malformed
/// field stops the parse and keeps what was read (everything in it is optional).
fn read_optional_meta(bytes: &[u8], n_char: usize, n_enum_set: usize) -> OptionalMeta {
    let mut m = OptionalMeta::default();
    let mut c = Cursor::new(bytes);
    while !c.is_empty() {
        let parsed = (|| -> Result<()> {
            let ty = c.u8()?;
            let len = lenenc_usize(&mut c)?;
            let v = c.take(len)?;
            match ty {
                1 => {
                    m.signedness = Some(
                        (0..v.len() * 8)
                            .map(|i| v.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                            .collect(),
                    );
                }
                2 => m.charsets = Some(read_charsets(v, true, n_char)?),
                3 => m.charsets = Some(read_charsets(v, false, n_char)?),
                4 => {
                    let mut nc = Cursor::new(v);
                    let mut names = Vec::new();
                    while !nc.is_empty() {
                        let l = lenenc_usize(&mut nc)?;
                        names.push(String::from_utf8_lossy(nc.take(l)?).into_owned());
                    }
                    m.names = Some(names);
                }
                5 => m.set_values = read_str_values(v)?,
                6 => m.enum_values = read_str_values(v)?,
                8 => {
                    m.has_pk_info = true;
                    let mut pc = Cursor::new(v);
                    while !pc.is_empty() {
                        m.primary_key.push(lenenc_usize(&mut pc)?);
                    }
                }
                9 => {
                    m.has_pk_info = true;
                    let mut pc = Cursor::new(v);
                    while !pc.is_empty() {
                        m.primary_key.push(lenenc_usize(&mut pc)?);
                        pc.lenenc()?;
                    }
                }
                10 => m.enum_set_charsets = Some(read_charsets(v, true, n_enum_set)?),
                11 => m.enum_set_charsets = Some(read_charsets(v, false, n_enum_set)?),
                _ => {}
            }
            Ok(())
        })();
        if parsed.is_err() {
            break;
        }
    }
    m
}

fn meta_u8(meta: &[u8], i: usize) -> u8 {
    meta.get(i).copied().unwrap_or(0)
}

fn bad_meta(col: usize, what: &str) -> Error {
    Error::corruption(format!(
        "TABLE_MAP column {} has bad metadata for {what}",
        col + 1
    ))
}

/// Whether a binlog column type can hold a column of `data_type` (information_schema's
/// DATA_TYPE): the check that keeps a schema-history version from naming the wrong columns.
fn compatible(real: ColumnType, data_type: &str) -> bool {
    use ColumnType as T;
    let d = data_type.to_ascii_lowercase();
    match real {
        T::MYSQL_TYPE_TINY => d == "tinyint" || d == "bool" || d == "boolean",
        T::MYSQL_TYPE_SHORT => d == "smallint",
        T::MYSQL_TYPE_INT24 => d == "mediumint",
        T::MYSQL_TYPE_LONG => d == "int" || d == "integer",
        T::MYSQL_TYPE_LONGLONG => d == "bigint",
        T::MYSQL_TYPE_NEWDECIMAL => d == "decimal" || d == "numeric",
        T::MYSQL_TYPE_FLOAT => d == "float",
        T::MYSQL_TYPE_DOUBLE => d == "double" || d == "real",
        T::MYSQL_TYPE_BIT => d == "bit",
        T::MYSQL_TYPE_YEAR => d == "year",
        T::MYSQL_TYPE_NEWDATE | T::MYSQL_TYPE_DATE => d == "date",
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => d == "time",
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => d == "datetime",
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => d == "timestamp",
        T::MYSQL_TYPE_STRING | T::MYSQL_TYPE_VARCHAR | T::MYSQL_TYPE_VAR_STRING => {
            matches!(
                d.as_str(),
                "char" | "varchar" | "binary" | "varbinary" | "inet4" | "inet6" | "uuid"
            )
        }
        T::MYSQL_TYPE_ENUM => d == "enum",
        T::MYSQL_TYPE_SET => d == "set",
        T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB => d.ends_with("text") || d.ends_with("blob") || d == "json",
        T::MYSQL_TYPE_JSON => d == "json",
        T::MYSQL_TYPE_GEOMETRY => matches!(
            d.as_str(),
            "geometry"
                | "point"
                | "linestring"
                | "polygon"
                | "multipoint"
                | "multilinestring"
                | "multipolygon"
                | "geometrycollection"
                | "geomcollection"
        ),
        _ => false,
    }
}

/// Whether the servers count a column in TABLE_MAP's SIGNEDNESS field: every integer type,
/// FLOAT, DOUBLE, DECIMAL and also YEAR (MariaDB: every `Field_num`, YEAR included, always
/// "unsigned"; MySQL 8.0.41+/8.4/9.x: `has_signedess_information_type`, YEAR and the pre-5.0
/// DECIMAL included), not BIT. `mysql_common`'s `ColumnType::is_numeric_type` is exactly this
/// set. (`mariadb-binlog` 10.11 itself leaves YEAR out and so misreads the signedness of every
/// numeric column after a YEAR column; MDEV-38144.)
fn counts_signedness(real: ColumnType) -> bool {
    real.is_numeric_type()
}

/// Whether the servers count a column in TABLE_MAP's DEFAULT_CHARSET / COLUMN_CHARSET fields.
/// MySQL (`is_character_type` of the real type): CHAR, VARCHAR, BLOB/TEXT and, in 9.x, VECTOR.
/// MariaDB (`is_character_field`: a column with a charset that is not ENUM/SET): the same and
/// GEOMETRY (charset `binary`; "base class is blob for geom type"); its INET4/INET6/UUID are
/// CHAR-typed in the binlog and so counted either way. `mysql_common`'s
/// `ColumnType::is_character_type` never counts GEOMETRY, so with it every character column
/// after a GEOMETRY column of a MariaDB table took the charset of the column before it.
fn counts_charset(real: ColumnType, mariadb: bool) -> bool {
    use ColumnType as T;
    match real {
        T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB => true,
        T::MYSQL_TYPE_GEOMETRY => mariadb,
        T::MYSQL_TYPE_VECTOR => !mariadb,
        _ => false,
    }
}

/// Fills missing optional metadata (names, signedness, charsets, ENUM/SET labels, primary key)
/// from a schema-history version, if it has the same columns with compatible types. Returns
/// whether it did.
fn fill_from_history(
    opt: &mut OptionalMeta,
    types: &[(ColumnType, ColumnType, &[u8])],
    hist: &[crate::record::HistoryColumn],
    mariadb: bool,
) -> bool {
    if hist.len() != types.len()
        || !types
            .iter()
            .zip(hist)
            .all(|((_, real, _), h)| compatible(*real, &h.data_type))
    {
        return false;
    }
    opt.names = Some(hist.iter().map(|h| h.name.clone()).collect());
    if opt.signedness.is_none() {
        opt.signedness = Some(
            types
                .iter()
                .zip(hist)
                .filter(|((_, real, _), _)| counts_signedness(*real))
                .map(|(_, h)| h.unsigned)
                .collect(),
        );
    }
    if opt.charsets.is_none() {
        opt.charsets = Some(
            types
                .iter()
                .zip(hist)
                .filter(|((_, real, _), _)| counts_charset(*real, mariadb))
                .map(|(_, h)| h.collation_id.unwrap_or(0))
                .collect(),
        );
    }
    if opt.enum_set_charsets.is_none() {
        opt.enum_set_charsets = Some(
            types
                .iter()
                .zip(hist)
                .filter(|((_, real, _), _)| real.is_enum_or_set_type())
                .map(|(_, h)| h.collation_id.unwrap_or(0))
                .collect(),
        );
    }
    let labels = |want: ColumnType| -> Vec<Vec<Vec<u8>>> {
        types
            .iter()
            .zip(hist)
            .filter(|((_, real, _), _)| *real == want)
            .map(|(_, h)| h.values.iter().map(|v| v.as_bytes().to_vec()).collect())
            .collect()
    };
    if opt.enum_values.is_empty() {
        opt.enum_values = labels(ColumnType::MYSQL_TYPE_ENUM);
    }
    if opt.set_values.is_empty() {
        opt.set_values = labels(ColumnType::MYSQL_TYPE_SET);
    }
    if !opt.has_pk_info {
        opt.primary_key = hist
            .iter()
            .enumerate()
            .filter(|(_, h)| h.primary_key)
            .map(|(i, _)| i)
            .collect();
        opt.has_pk_info = true;
    }
    true
}

/// Builds the schema of a TABLE_MAP event. `history`: the table's columns from the schema
/// history, used when the event lacks column names (MINIMAL metadata, MySQL 5.x). `mariadb`:
/// the binlog was written by MariaDB (its server version says so), whose optional metadata
/// counts columns a little differently from MySQL's.
pub(crate) fn table_schema(
    tme: &TableMapEvent<'_>,
    body: &[u8],
    post_header_len: u8,
    history: Option<&[crate::record::HistoryColumn]>,
    mariadb: bool,
) -> Result<TableSchema> {
    let ncols = usize::try_from(tme.columns_count())
        .map_err(|_| Error::corruption("TABLE_MAP column count overflows"))?;
    // First pass: raw and real types, to size the optional metadata arrays.
    let mut raw_types = Vec::with_capacity(ncols);
    let mut compressed = vec![false; ncols];
    let has_compressed = mariadb
        && table_map_parts(body, post_header_len).is_ok_and(|(types, _, _)| {
            types
                .iter()
                .any(|&t| t == MARIADB_BLOB_COMPRESSED || t == MARIADB_VARCHAR_COMPRESSED)
        });
    if has_compressed {
        let cols = columns_with_compressed(body, post_header_len)?;
        if cols.len() != ncols {
            return Err(Error::corruption(
                "TABLE_MAP has fewer column types than columns",
            ));
        }
        for (i, (raw, real, meta, z)) in cols.into_iter().enumerate() {
            compressed[i] = z;
            raw_types.push((raw, real, meta));
        }
    } else {
        for i in 0..ncols {
            let raw = tme
                .get_raw_column_type(i)
                .map_err(|e| Error::unsupported(format!("TABLE_MAP column {}: {e}", i + 1)))?
                .ok_or_else(|| {
                    Error::corruption("TABLE_MAP has fewer column types than columns")
                })?;
            let meta = tme.get_column_metadata(i).ok_or_else(|| {
                Error::corruption(format!("TABLE_MAP column {}: metadata missing", i + 1))
            })?;
            raw_types.push((raw, real_type(raw, meta), meta));
        }
    }
    let n_char = raw_types
        .iter()
        .filter(|(_, real, _)| counts_charset(*real, mariadb))
        .count();
    let n_enum_set = raw_types
        .iter()
        .filter(|(_, real, _)| real.is_enum_or_set_type())
        .count();
    let mut opt = read_optional_meta(
        optional_metadata(body, post_header_len)?,
        n_char,
        n_enum_set,
    );
    let mut names_missing = opt.names.as_ref().is_none_or(|n| n.len() != ncols);
    if names_missing {
        if let Some(h) = history {
            names_missing = !fill_from_history(&mut opt, &raw_types, h, mariadb);
        }
    }

    let null_bits = tme.null_bitmask();
    let mut numeric_i = 0usize;
    let mut char_i = 0usize;
    let mut enum_set_i = 0usize;
    let mut enum_i = 0usize;
    let mut set_i = 0usize;
    let mut json_columns = 0usize;
    let mut fields = Vec::with_capacity(ncols);
    let mut decoders = Vec::with_capacity(ncols);

    for (i, &(raw, real, meta)) in raw_types.iter().enumerate() {
        let unsigned = if counts_signedness(real) {
            let u = opt
                .signedness
                .as_ref()
                .and_then(|s| s.get(numeric_i).copied());
            numeric_i += 1;
            u
        } else {
            None
        };
        let collation = if counts_charset(real, mariadb) {
            let c = opt.charsets.as_ref().and_then(|c| c.get(char_i).copied());
            char_i += 1;
            c
        } else if real.is_enum_or_set_type() {
            let c = opt
                .enum_set_charsets
                .as_ref()
                .and_then(|c| c.get(enum_set_i).copied());
            enum_set_i += 1;
            c
        } else {
            None
        };
        let charset = collation.and_then(charset_of_collation);
        let is_binary = charset == Some("binary");
        let u = unsigned.unwrap_or(false);
        let us = if u { " unsigned" } else { "" };

        let (decoder, kind, type_code, type_name): (ColumnDecoder, ColumnKind, u8, String) =
            match real {
                ColumnType::MYSQL_TYPE_TINY => (
                    ColumnDecoder::Int {
                        bytes: 1,
                        unsigned: u,
                    },
                    ColumnKind::Integer,
                    1,
                    format!("tinyint{us}"),
                ),
                ColumnType::MYSQL_TYPE_SHORT => (
                    ColumnDecoder::Int {
                        bytes: 2,
                        unsigned: u,
                    },
                    ColumnKind::Integer,
                    2,
                    format!("smallint{us}"),
                ),
                ColumnType::MYSQL_TYPE_INT24 => (
                    ColumnDecoder::Int {
                        bytes: 3,
                        unsigned: u,
                    },
                    ColumnKind::Integer,
                    9,
                    format!("mediumint{us}"),
                ),
                ColumnType::MYSQL_TYPE_LONG => (
                    ColumnDecoder::Int {
                        bytes: 4,
                        unsigned: u,
                    },
                    ColumnKind::Integer,
                    3,
                    format!("int{us}"),
                ),
                ColumnType::MYSQL_TYPE_LONGLONG => (
                    ColumnDecoder::Int {
                        bytes: 8,
                        unsigned: u,
                    },
                    ColumnKind::Integer,
                    8,
                    format!("bigint{us}"),
                ),
                ColumnType::MYSQL_TYPE_FLOAT => (
                    ColumnDecoder::Float,
                    ColumnKind::Float,
                    4,
                    format!("float{us}"),
                ),
                ColumnType::MYSQL_TYPE_DOUBLE => (
                    ColumnDecoder::Double,
                    ColumnKind::Float,
                    5,
                    format!("double{us}"),
                ),
                ColumnType::MYSQL_TYPE_NEWDECIMAL => {
                    let (p, s) = (meta_u8(meta, 0), meta_u8(meta, 1));
                    if p == 0 || p > 65 || s > 38 || s > p {
                        return Err(bad_meta(i, "DECIMAL"));
                    }
                    (
                        ColumnDecoder::Decimal {
                            precision: p,
                            scale: s,
                        },
                        ColumnKind::Decimal,
                        246,
                        format!("decimal({p},{s}){us}"),
                    )
                }
                ColumnType::MYSQL_TYPE_BIT => {
                    let nbits = u16::from(meta_u8(meta, 1)) * 8 + u16::from(meta_u8(meta, 0));
                    if nbits == 0 || nbits > 64 {
                        return Err(bad_meta(i, "BIT"));
                    }
                    (
                        ColumnDecoder::Bit { nbits },
                        ColumnKind::Bit,
                        16,
                        format!("bit({nbits})"),
                    )
                }
                ColumnType::MYSQL_TYPE_YEAR => {
                    (ColumnDecoder::Year, ColumnKind::Year, 13, "year".into())
                }
                ColumnType::MYSQL_TYPE_NEWDATE => {
                    (ColumnDecoder::Date, ColumnKind::Date, 10, "date".into())
                }
                ColumnType::MYSQL_TYPE_TIME => {
                    (ColumnDecoder::TimeOld, ColumnKind::Time, 11, "time".into())
                }
                ColumnType::MYSQL_TYPE_DATETIME => (
                    ColumnDecoder::DateTimeOld,
                    ColumnKind::DateTime,
                    12,
                    "datetime".into(),
                ),
                ColumnType::MYSQL_TYPE_TIMESTAMP => (
                    ColumnDecoder::TimestampOld,
                    ColumnKind::Timestamp,
                    7,
                    "timestamp".into(),
                ),
                ColumnType::MYSQL_TYPE_TIME2
                | ColumnType::MYSQL_TYPE_DATETIME2
                | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
                    let fsp = meta_u8(meta, 0);
                    if fsp > 6 {
                        return Err(bad_meta(i, "a temporal type"));
                    }
                    let suffix = if fsp > 0 {
                        format!("({fsp})")
                    } else {
                        String::new()
                    };
                    match real {
                        ColumnType::MYSQL_TYPE_TIME2 => (
                            ColumnDecoder::Time2 { fsp },
                            ColumnKind::Time,
                            11,
                            format!("time{suffix}"),
                        ),
                        ColumnType::MYSQL_TYPE_DATETIME2 => (
                            ColumnDecoder::DateTime2 { fsp },
                            ColumnKind::DateTime,
                            12,
                            format!("datetime{suffix}"),
                        ),
                        _ => (
                            ColumnDecoder::Timestamp2 { fsp },
                            ColumnKind::Timestamp,
                            7,
                            format!("timestamp{suffix}"),
                        ),
                    }
                }
                ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING => {
                    let max = u16::from_le_bytes([meta_u8(meta, 0), meta_u8(meta, 1)]);
                    let len_bytes = if max < 256 { 1 } else { 2 };
                    let (kind, name) = if is_binary {
                        (ColumnKind::Binary, "varbinary")
                    } else {
                        (ColumnKind::String, "varchar")
                    };
                    (
                        ColumnDecoder::VarString { len_bytes },
                        kind,
                        253,
                        format!("{name}({max} bytes)"),
                    )
                }
                ColumnType::MYSQL_TYPE_STRING => {
                    let (b0, b1) = (meta_u8(meta, 0), meta_u8(meta, 1));
                    let max_len = ((u16::from((b0 & 0x30) ^ 0x30)) << 4) | u16::from(b1);
                    let len_bytes = if max_len < 256 { 1 } else { 2 };
                    let (kind, name) = if is_binary {
                        (ColumnKind::Binary, "binary")
                    } else {
                        (ColumnKind::String, "char")
                    };
                    (
                        ColumnDecoder::FixString {
                            len_bytes,
                            max_len,
                            pad_binary: is_binary,
                        },
                        kind,
                        254,
                        format!("{name}({max_len} bytes)"),
                    )
                }
                ColumnType::MYSQL_TYPE_ENUM => {
                    let pack = meta_u8(meta, 1);
                    if !(1..=2).contains(&pack) {
                        return Err(bad_meta(i, "ENUM"));
                    }
                    let labels = opt.enum_values.get(enum_i).map(|v| Arc::from(v.clone()));
                    enum_i += 1;
                    (
                        ColumnDecoder::Enum { pack, labels },
                        ColumnKind::Enum,
                        247,
                        "enum".into(),
                    )
                }
                ColumnType::MYSQL_TYPE_SET => {
                    let pack = meta_u8(meta, 1);
                    if !(1..=8).contains(&pack) {
                        return Err(bad_meta(i, "SET"));
                    }
                    let labels = opt.set_values.get(set_i).map(|v| Arc::from(v.clone()));
                    set_i += 1;
                    (
                        ColumnDecoder::Set { pack, labels },
                        ColumnKind::Set,
                        248,
                        "set".into(),
                    )
                }
                ColumnType::MYSQL_TYPE_BLOB
                | ColumnType::MYSQL_TYPE_TINY_BLOB
                | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
                | ColumnType::MYSQL_TYPE_LONG_BLOB => {
                    let len_bytes = meta_u8(meta, 0);
                    if !(1..=4).contains(&len_bytes) {
                        return Err(bad_meta(i, "BLOB"));
                    }
                    let (code, size) = match len_bytes {
                        1 => (249, "tiny"),
                        2 => (252, ""),
                        3 => (250, "medium"),
                        _ => (251, "long"),
                    };
                    // Without charset metadata a BLOB and a TEXT look the same: call it BLOB.
                    let is_text = charset.is_some() && !is_binary;
                    let (kind, name) = if is_text {
                        (ColumnKind::Text, "text")
                    } else {
                        (ColumnKind::Blob, "blob")
                    };
                    (
                        ColumnDecoder::Blob { len_bytes },
                        kind,
                        code,
                        format!("{size}{name}"),
                    )
                }
                ColumnType::MYSQL_TYPE_JSON => {
                    json_columns += 1;
                    let len_bytes = meta_u8(meta, 0);
                    if !(1..=4).contains(&len_bytes) {
                        return Err(bad_meta(i, "JSON"));
                    }
                    (
                        ColumnDecoder::Json { len_bytes },
                        ColumnKind::Json,
                        245,
                        "json".into(),
                    )
                }
                ColumnType::MYSQL_TYPE_GEOMETRY => {
                    let len_bytes = meta_u8(meta, 0);
                    if !(1..=4).contains(&len_bytes) {
                        return Err(bad_meta(i, "GEOMETRY"));
                    }
                    (
                        ColumnDecoder::Geometry { len_bytes },
                        ColumnKind::Geometry,
                        255,
                        "geometry".into(),
                    )
                }
                ColumnType::MYSQL_TYPE_VECTOR => {
                    let len_bytes = meta_u8(meta, 0);
                    if !(1..=4).contains(&len_bytes) {
                        return Err(bad_meta(i, "VECTOR"));
                    }
                    (
                        ColumnDecoder::Blob { len_bytes },
                        ColumnKind::Vector,
                        242,
                        "vector".into(),
                    )
                }
                ColumnType::MYSQL_TYPE_NULL => {
                    (ColumnDecoder::Null, ColumnKind::Null, 6, "null".into())
                }
                other => {
                    return Err(Error::unsupported(format!(
                        "column {} of {}.{} has type {other:?} (code {}), which is not supported",
                        i + 1,
                        String::from_utf8_lossy(tme.database_name_raw()),
                        String::from_utf8_lossy(tme.table_name_raw()),
                        raw as u8
                    )));
                }
            };
        // A MariaDB COMPRESSED column: the same column, its values inflated.
        let (decoder, type_name) = match (compressed[i], decoder) {
            (true, ColumnDecoder::VarString { len_bytes }) => (
                ColumnDecoder::Compressed {
                    len_bytes,
                    max_len: u64::from(u16::from_le_bytes([meta_u8(meta, 0), meta_u8(meta, 1)])),
                },
                format!("{type_name} compressed"),
            ),
            (true, ColumnDecoder::Blob { len_bytes }) => (
                ColumnDecoder::Compressed {
                    len_bytes,
                    max_len: (1u64 << (8 * u32::from(len_bytes))) - 1,
                },
                format!("{type_name} compressed"),
            ),
            (_, decoder) => (decoder, type_name),
        };
        let name = match &opt.names {
            Some(n) if !names_missing => n.get(i).cloned().unwrap_or_default(),
            _ => format!("@{}", i + 1),
        };
        let charset = match kind {
            ColumnKind::String
            | ColumnKind::Binary
            | ColumnKind::Text
            | ColumnKind::Blob
            | ColumnKind::Enum
            | ColumnKind::Set => charset,
            ColumnKind::Json if raw == ColumnType::MYSQL_TYPE_JSON => Some("utf8mb4"),
            _ => None,
        };
        fields.push(Field {
            name,
            type_code,
            type_name,
            kind,
            charset,
            collation,
            unsigned,
            nullable: null_bits.get(i).as_deref().copied().unwrap_or(true),
            primary_key: false,
        });
        decoders.push(decoder);
    }
    let mut primary_key = Vec::new();
    for &i in &opt.primary_key {
        if let Some(f) = fields.get_mut(i) {
            f.primary_key = true;
            primary_key.push(i);
        }
    }
    Ok(TableSchema {
        table_id: tme.table_id(),
        info: Arc::new(TableInfo::new(
            String::from_utf8_lossy(tme.database_name_raw()).into_owned(),
            String::from_utf8_lossy(tme.table_name_raw()).into_owned(),
            fields,
            primary_key,
            names_missing,
        )),
        decoders,
        json_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::binlog::consts::{BinlogVersion, EventType};
    use mysql_common::binlog::events::FormatDescriptionEvent;
    use mysql_common::binlog::BinlogCtx;
    use mysql_common::io::ParseBuf;

    /// A TABLE_MAP body for `d.t (id INT UNSIGNED, g GEOMETRY, c CHAR(10), y YEAR, n INT)`
    /// with SIGNEDNESS `signedness` and COLUMN_CHARSET `charsets` (one byte each).
    fn body(signedness: u8, charsets: &[u8]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0]; // table id, flags
        b.extend([1, b'd', 0, 1, b't', 0]);
        b.push(5);
        b.extend([3, 255, 254, 13, 3]); // LONG, GEOMETRY, STRING, YEAR, LONG
        b.extend([3, 4, 0xfe, 40]); // GEOMETRY: pack length 4; STRING: real type, length 40
        b.push(0b11110); // nullable
        b.extend([1, 1, signedness]);
        b.push(3);
        b.push(u8::try_from(charsets.len()).unwrap());
        b.extend(charsets);
        b
    }

    fn schema(body: &[u8], mariadb: bool) -> TableSchema {
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        let phl = fde.get_event_type_header_length(EventType::TABLE_MAP_EVENT);
        let ctx = BinlogCtx::new(
            crate::binlog::frame::HEADER_LEN + body.len(),
            &fde,
            EventType::TABLE_MAP_EVENT as u8,
        );
        let tme: TableMapEvent<'_> = ParseBuf(body).parse(ctx).unwrap();
        table_schema(&tme, body, phl, None, mariadb).unwrap()
    }

    #[test]
    fn mariadb_counts_geometry_in_the_charsets() {
        // MariaDB: GEOMETRY has a charset entry (binary, 63), then CHAR's (latin1, 8).
        let s = schema(&body(0b1000_0000, &[63, 8]), true);
        assert_eq!(s.info.fields[2].charset, Some("latin1"));
        // MySQL: GEOMETRY has none, the CHAR's is the first.
        let s = schema(&body(0b1000_0000, &[8]), false);
        assert_eq!(s.info.fields[2].charset, Some("latin1"));
    }

    #[test]
    fn year_takes_a_signedness_bit() {
        // Bits: id unsigned, YEAR (always "unsigned"), n signed.
        let s = schema(&body(0b1100_0000, &[63, 8]), true);
        assert_eq!(s.info.fields[0].unsigned, Some(true));
        assert_eq!(s.info.fields[4].unsigned, Some(false));
    }
}
