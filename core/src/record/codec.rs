//! The stored form of a record: a compact, versioned binary encoding (varints, little-endian).
//!
//! Tables (names, fields, keys) and repeated strings (server version, GTID source ids) are not
//! written into each record: the record holds small ids that a [`Dictionary`] resolves. The
//! layout is in `docs/DESIGN.md`. Decoding treats the bytes as untrusted: every length is
//! checked against the bytes present, and a bad record is a `Corruption` error, never a panic.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::{
    ChangeRecord, Checkpoint, ColumnKind, Ddl, Decimal, Field, Op, RecordFlags, TableInfo, Value,
};

/// Version byte of the record encoding.
pub const RECORD_FORMAT: u8 = 1;

/// Ids for tables and strings, assigned by whoever stores records (the store keeps them in its
/// own column family, written in the same batch as the first record that uses them).
pub trait Dictionary {
    /// The id of a table description, assigning one if it is new.
    fn table_id(&mut self, table: &Arc<TableInfo>) -> u64;
    /// The id of a string, assigning one if it is new.
    fn string_id(&mut self, s: &str) -> u64;
    /// The table with this id.
    ///
    /// # Errors
    /// `Corruption` for an unknown id.
    fn table(&self, id: u64) -> Result<Arc<TableInfo>>;
    /// The string with this id.
    ///
    /// # Errors
    /// `Corruption` for an unknown id.
    fn string(&self, id: u64) -> Result<Arc<str>>;
}

#[cold]
#[inline(never)]
fn bad(what: &str) -> Error {
    Error::corruption(format!("stored record is malformed: {what}"))
}

// ---------------------------------------------------------------------------------------------
// Primitive writers and a bounds-checked reader.

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked reader of stored bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from the start.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Whether every byte was read.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// One byte.
    ///
    /// # Errors
    /// `Corruption` at the end of the input.
    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| bad("ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` bytes.
    ///
    /// # Errors
    /// `Corruption` when fewer are left.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad("length past the end"))?;
        let s = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    /// An unsigned varint.
    ///
    /// # Errors
    /// `Corruption` for a truncated or over-long varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64> {
        // Most stored integers fit in one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let mut v = 0u64;
        for (i, &b) in rest.iter().take(10).enumerate() {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        Err(bad(if rest.len() < 10 {
            "ends early"
        } else {
            "varint too long"
        }))
    }

    #[inline]
    fn zigzag(&mut self) -> Result<i64> {
        let z = self.varint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    #[inline]
    fn len(&mut self) -> Result<usize> {
        let n = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
        if n > self.buf.len().saturating_sub(self.pos) {
            return Err(bad("length past the end"));
        }
        Ok(n)
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?).map_err(|_| bad("value too large"))
    }

    #[inline]
    fn small<T: TryFrom<u64>>(&mut self) -> Result<T> {
        T::try_from(self.varint()?).map_err(|_| bad("value out of range"))
    }
}

// ---------------------------------------------------------------------------------------------
// Values.

const V_NULL: u8 = 0;
const V_MISSING: u8 = 1;
const V_INT: u8 = 2;
const V_UINT: u8 = 3;
const V_FLOAT: u8 = 4;
const V_DOUBLE: u8 = 5;
const V_DECIMAL: u8 = 6;
const V_BIT: u8 = 7;
const V_YEAR: u8 = 8;
const V_DATE: u8 = 9;
const V_TIME: u8 = 10;
const V_DATETIME: u8 = 11;
const V_TIMESTAMP: u8 = 12;
const V_BYTES: u8 = 13;
const V_ENUM: u8 = 14;
const V_SET: u8 = 15;
const V_JSON: u8 = 16;
const V_GEOMETRY: u8 = 17;
const V_JSONDIFF: u8 = 18;

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(V_NULL),
        Value::Missing => out.push(V_MISSING),
        Value::Int(i) => {
            out.push(V_INT);
            put_zigzag(out, *i);
        }
        Value::UInt(u) => {
            out.push(V_UINT);
            put_varint(out, *u);
        }
        Value::Float(f) => {
            out.push(V_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Double(d) => {
            out.push(V_DOUBLE);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Decimal(d) => {
            out.push(V_DECIMAL);
            out.push(d.precision());
            out.push(d.scale());
            put_bytes(out, d.raw());
        }
        Value::Bit(b) => {
            out.push(V_BIT);
            put_varint(out, *b);
        }
        Value::Year(y) => {
            out.push(V_YEAR);
            put_varint(out, u64::from(*y));
        }
        Value::Date { year, month, day } => {
            out.push(V_DATE);
            put_varint(out, u64::from(*year));
            out.push(*month);
            out.push(*day);
        }
        Value::Time {
            negative,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => {
            out.push(V_TIME);
            out.push(u8::from(*negative) | (fsp << 1));
            put_varint(out, u64::from(*hour));
            out.push(*minute);
            out.push(*second);
            put_varint(out, u64::from(*micros));
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => {
            out.push(V_DATETIME);
            out.push(*fsp);
            put_varint(out, u64::from(*year));
            out.extend_from_slice(&[*month, *day, *hour, *minute, *second]);
            put_varint(out, u64::from(*micros));
        }
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => {
            out.push(V_TIMESTAMP);
            out.push(*fsp);
            put_zigzag(out, *seconds);
            put_varint(out, u64::from(*micros));
        }
        Value::Bytes(b) => {
            out.push(V_BYTES);
            put_bytes(out, b);
        }
        Value::Enum { index, label } => {
            out.push(V_ENUM);
            put_varint(out, u64::from(*index));
            put_opt_bytes(out, label.as_deref());
        }
        Value::Set { bits, labels } => {
            out.push(V_SET);
            put_varint(out, *bits);
            put_opt_bytes(out, labels.as_deref());
        }
        Value::Json(s) => {
            out.push(V_JSON);
            put_bytes(out, s.as_bytes());
        }
        Value::JsonDiff(s) => {
            out.push(V_JSONDIFF);
            put_bytes(out, s.as_bytes());
        }
        Value::Geometry { srid, wkb } => {
            out.push(V_GEOMETRY);
            put_varint(out, u64::from(*srid));
            put_bytes(out, wkb);
        }
    }
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
        None => out.push(0),
    }
}

fn get_opt_bytes(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(r.bytes()?.to_vec()),
        _ => return Err(bad("option flag")),
    })
}

/// A stored value, borrowing the record's bytes where it holds bytes (the common, costly
/// case); the other kinds are decoded.
pub(crate) enum ValueRef<'a> {
    /// A string or binary value.
    Bytes(&'a [u8]),
    /// A JSON document's text.
    Json(&'a str),
    /// Any other value.
    Owned(Value),
}

#[inline(always)]
fn get_value_ref<'a>(r: &mut Reader<'a>) -> Result<ValueRef<'a>> {
    Ok(ValueRef::Owned(match r.u8()? {
        V_NULL => Value::Null,
        V_MISSING => Value::Missing,
        V_INT => Value::Int(r.zigzag()?),
        V_UINT => Value::UInt(r.varint()?),
        V_FLOAT => {
            let b = r.take(4)?;
            Value::Float(f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        V_DOUBLE => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Double(f64::from_bits(u64::from_le_bytes(a)))
        }
        V_DECIMAL => {
            let precision = r.u8()?;
            let scale = r.u8()?;
            Value::Decimal(Decimal::from_binary(r.bytes()?, precision, scale)?)
        }
        V_BIT => Value::Bit(r.varint()?),
        V_YEAR => Value::Year(r.small()?),
        V_DATE => Value::Date {
            year: r.small()?,
            month: r.u8()?,
            day: r.u8()?,
        },
        V_TIME => {
            let f = r.u8()?;
            if f >> 1 > 6 {
                return Err(bad("fsp"));
            }
            Value::Time {
                negative: f & 1 != 0,
                fsp: f >> 1,
                hour: r.u32()?,
                minute: r.u8()?,
                second: r.u8()?,
                micros: r.u32()?,
            }
        }
        V_DATETIME => {
            let fsp = r.u8()?;
            let year = r.small()?;
            let p = r.take(5)?;
            Value::DateTime {
                year,
                month: p[0],
                day: p[1],
                hour: p[2],
                minute: p[3],
                second: p[4],
                micros: r.u32()?,
                fsp,
            }
        }
        V_TIMESTAMP => {
            let fsp = r.u8()?;
            Value::Timestamp {
                fsp,
                seconds: r.zigzag()?,
                micros: r.u32()?,
            }
        }
        V_BYTES => return Ok(ValueRef::Bytes(r.bytes()?)),
        V_ENUM => Value::Enum {
            index: r.small()?,
            label: get_opt_bytes(r)?,
        },
        V_SET => Value::Set {
            bits: r.varint()?,
            labels: get_opt_bytes(r)?,
        },
        V_JSON => {
            let b = r.bytes()?;
            return Ok(ValueRef::Json(
                std::str::from_utf8(b).map_err(|_| bad("string is not UTF-8"))?,
            ));
        }
        V_JSONDIFF => {
            // Rendered into JSON output as it is: it must be JSON (found by fuzzing).
            let d = r.string()?;
            if serde_json::from_str::<serde::de::IgnoredAny>(&d).is_err() {
                return Err(bad("a partial JSON update is not JSON"));
            }
            Value::JsonDiff(d)
        }
        V_GEOMETRY => Value::Geometry {
            srid: r.u32()?,
            wkb: r.bytes()?.to_vec(),
        },
        t => return Err(bad(&format!("unknown value tag {t}"))),
    }))
}

#[inline(always)]
fn get_value(r: &mut Reader<'_>, shared: &bytes::Bytes) -> Result<Value> {
    let whole = r.buf;
    Ok(match get_value_ref(r)? {
        ValueRef::Bytes(b) => {
            // A slice of the record's buffer when it is shared; a copy otherwise.
            if shared.len() == whole.len() {
                let start = b.as_ptr() as usize - whole.as_ptr() as usize;
                Value::Bytes(shared.slice(start..start + b.len()))
            } else {
                Value::Bytes(bytes::Bytes::copy_from_slice(b))
            }
        }
        ValueRef::Json(s) => Value::Json(s.to_owned()),
        ValueRef::Owned(v) => v,
    })
}

fn put_image(out: &mut Vec<u8>, img: Option<&Vec<Value>>) {
    if let Some(values) = img {
        put_varint(out, values.len() as u64);
        for v in values {
            put_value(out, v);
        }
    }
}

fn get_image(r: &mut Reader<'_>, shared: &bytes::Bytes, ncols: usize) -> Result<Vec<Value>> {
    let n = r.len()?;
    if n != ncols {
        return Err(bad("image width differs from its table"));
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(get_value(r, shared)?);
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Records.

const F_NAMES_MISSING: u16 = 1;
const F_PARTIAL: u16 = 2;
const F_TABLE: u16 = 4;
const F_BEFORE: u16 = 8;
const F_AFTER: u16 = 16;
const F_DDL: u16 = 32;
const F_GTID: u16 = 64;
const F_XID: u16 = 128;
const F_THREAD: u16 = 256;
const F_DATABASE: u16 = 512;
const F_GTID_SPLIT: u16 = 1024;

fn op_code(op: Op) -> u8 {
    match op {
        Op::Insert => 0,
        Op::Update => 1,
        Op::Delete => 2,
        Op::Ddl => 3,
        Op::Begin => 4,
        Op::Commit => 5,
        Op::Heartbeat => 6,
    }
}

fn op_from(code: u8) -> Result<Op> {
    Ok(match code {
        0 => Op::Insert,
        1 => Op::Update,
        2 => Op::Delete,
        3 => Op::Ddl,
        4 => Op::Begin,
        5 => Op::Commit,
        6 => Op::Heartbeat,
        _ => return Err(bad("operation")),
    })
}

/// Splits a GTID into a source part that repeats (`uuid`, `domain-server`) and a number.
fn split_gtid(g: &str) -> Option<(&str, u64)> {
    let (src, n) = match g.rsplit_once(':') {
        Some(x) => x,
        None => g.rsplit_once('-')?,
    };
    let n: u64 = n.parse().ok()?;
    // Only when rejoining gives the same text back.
    (n.to_string().len() == g.len() - src.len() - 1).then_some((src, n))
}

/// Appends the stored form of `rec` (the sequence number is not part of it: it is the key).
pub fn encode(out: &mut Vec<u8>, rec: &ChangeRecord, dict: &mut dyn Dictionary) {
    let mut flags = 0u16;
    if rec.flags.names_missing {
        flags |= F_NAMES_MISSING;
    }
    if rec.flags.partial_image {
        flags |= F_PARTIAL;
    }
    let gtid_split = rec.gtid.as_deref().and_then(split_gtid);
    for (cond, f) in [
        (rec.table.is_some(), F_TABLE),
        (rec.before.is_some(), F_BEFORE),
        (rec.after.is_some(), F_AFTER),
        (rec.ddl.is_some(), F_DDL),
        (rec.gtid.is_some(), F_GTID),
        (gtid_split.is_some(), F_GTID_SPLIT),
        (rec.xid.is_some(), F_XID),
        (rec.thread_id.is_some(), F_THREAD),
        (rec.database.is_some(), F_DATABASE),
    ] {
        if cond {
            flags |= f;
        }
    }
    out.push(RECORD_FORMAT);
    out.push(op_code(rec.op));
    put_varint(out, u64::from(flags));
    put_varint(out, u64::from(rec.timestamp));
    put_varint(out, u64::from(rec.checkpoint.file_index));
    put_varint(out, rec.checkpoint.offset);
    put_varint(out, u64::from(rec.safe_checkpoint.file_index));
    put_varint(out, rec.safe_checkpoint.offset);
    put_varint(out, u64::from(rec.server_id));
    put_varint(out, dict.string_id(&rec.server_version));
    if let Some(t) = &rec.table {
        put_varint(out, dict.table_id(t));
    }
    match (&rec.gtid, gtid_split) {
        (Some(_), Some((src, n))) => {
            put_varint(out, dict.string_id(src));
            put_varint(out, n);
        }
        (Some(g), None) => put_bytes(out, g.as_bytes()),
        _ => {}
    }
    if let Some(x) = rec.xid {
        put_varint(out, x);
    }
    if let Some(t) = rec.thread_id {
        put_varint(out, u64::from(t));
    }
    if let Some(db) = &rec.database {
        put_bytes(out, db.as_bytes());
    }
    if let Some(ddl) = &rec.ddl {
        put_bytes(out, ddl.statement.as_bytes());
        put_bytes(out, ddl.session.as_bytes());
    }
    put_image(out, rec.before.as_ref());
    put_image(out, rec.after.as_ref());
}

/// Decodes a stored record. `shared` may be the same bytes as `buf` held in a [`bytes::Bytes`]:
/// string values then share it instead of being copied.
///
/// # Errors
/// `Corruption` for malformed bytes or unknown ids.
pub fn decode(
    buf: &[u8],
    shared: &bytes::Bytes,
    seq: u64,
    dict: &dyn Dictionary,
) -> Result<ChangeRecord> {
    decode_cached(buf, shared, seq, dict, &mut DecodeCache::default())
}

/// State carried from one [`decode_cached`] call to the next by a reader of consecutive records:
/// the records of one transaction share their GTID string instead of rebuilding it.
#[derive(Debug, Default)]
pub struct DecodeCache {
    gtid: Option<(Arc<str>, u64, Arc<str>)>,
    table: Option<(u64, Arc<TableInfo>)>,
    server_version: Option<(u64, Arc<str>)>,
    gtid_source: Option<(u64, Arc<str>)>,
    /// Where the stored bytes of consecutive records are copied to (see [`Self::share`]).
    arena: Arena,
}

/// Bytes of the chunks an [`Arena`] copies records into.
const ARENA_CHUNK: usize = 16 << 10;
/// Records larger than this get a buffer of their own.
const ARENA_MAX_RECORD: usize = 2 << 10;
/// Records an [`Arena`] copies one by one before it starts using chunks.
const ARENA_AFTER: u64 = 16;

/// Owned copies of stored records, for their string values to share without a copy each.
///
/// A reader of many records copies them into 16 KiB chunks: one allocation per chunk, not per
/// record. A chunk is freed when the last value taken from it is dropped, so a value kept
/// alive holds at most 16 KiB. The first few records (a short read), and any record over
/// 2 KiB, get an exact copy.
#[derive(Debug, Default)]
pub struct Arena {
    chunk: bytes::BytesMut,
    copied: u64,
}

impl Arena {
    /// An owned copy of `value`.
    pub fn share(&mut self, value: &[u8]) -> bytes::Bytes {
        self.copied += 1;
        if self.copied <= ARENA_AFTER || value.len() > ARENA_MAX_RECORD {
            return bytes::Bytes::copy_from_slice(value);
        }
        if self.chunk.capacity() - self.chunk.len() < value.len() {
            self.chunk = bytes::BytesMut::with_capacity(ARENA_CHUNK);
        }
        self.chunk.extend_from_slice(value);
        self.chunk.split().freeze()
    }
}

impl DecodeCache {
    /// An owned copy of a stored record's bytes, for its string values to share (see
    /// [`Arena`]).
    pub fn share(&mut self, value: &[u8]) -> bytes::Bytes {
        self.arena.share(value)
    }

    fn table(&mut self, id: u64, dict: &dyn Dictionary) -> Result<Arc<TableInfo>> {
        if let Some((i, t)) = &self.table {
            if *i == id {
                return Ok(Arc::clone(t));
            }
        }
        let t = dict.table(id)?;
        self.table = Some((id, Arc::clone(&t)));
        Ok(t)
    }

    fn server_version(&mut self, id: u64, dict: &dyn Dictionary) -> Result<Arc<str>> {
        if let Some((i, s)) = &self.server_version {
            if *i == id {
                return Ok(Arc::clone(s));
            }
        }
        let s = dict.string(id)?;
        self.server_version = Some((id, Arc::clone(&s)));
        Ok(s)
    }
}

/// [`decode`], reusing what `cache` holds from the previous record.
///
/// # Errors
/// `Corruption` for malformed bytes or unknown ids.
pub fn decode_cached(
    buf: &[u8],
    shared: &bytes::Bytes,
    seq: u64,
    dict: &dyn Dictionary,
    cache: &mut DecodeCache,
) -> Result<ChangeRecord> {
    let (mut rec, mut images) = decode_head(buf, seq, dict, cache)?;
    if images.before {
        rec.before = Some(get_image(&mut images.r, shared, images.ncols)?);
    }
    if images.after {
        rec.after = Some(get_image(&mut images.r, shared, images.ncols)?);
    }
    images.finish()?;
    Ok(rec)
}

/// A stored record's images, left in their stored bytes by [`decode_head`]: read them in
/// order (the before image, then the after image), then [`StoredImages::finish`].
pub(crate) struct StoredImages<'a> {
    r: Reader<'a>,
    before: bool,
    after: bool,
    ncols: usize,
}

impl<'a> StoredImages<'a> {
    /// Whether the record has its after image (`after`) or its before image.
    pub(crate) fn has(&self, after: bool) -> bool {
        if after {
            self.after
        } else {
            self.before
        }
    }

    /// Starts the next image: its number of values (checked against the table).
    pub(crate) fn start(&mut self) -> Result<usize> {
        let n = self.r.len()?;
        if n != self.ncols {
            return Err(bad("image width differs from its table"));
        }
        Ok(n)
    }

    /// The next value of the image started.
    #[inline]
    pub(crate) fn value(&mut self) -> Result<ValueRef<'a>> {
        get_value_ref(&mut self.r)
    }

    /// Reads past the next image (checking it).
    pub(crate) fn skip(&mut self) -> Result<()> {
        for _ in 0..self.start()? {
            self.value()?;
        }
        Ok(())
    }

    /// Checks that every byte was read.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.r.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing bytes"))
        }
    }
}

/// Decodes a stored record without its images (`before` and `after` are `None`), which are
/// returned in their stored bytes: for a writer that turns them into another encoding without
/// building [`Value`]s.
///
/// # Errors
/// `Corruption` for malformed bytes or unknown ids.
pub(crate) fn decode_head<'a>(
    buf: &'a [u8],
    seq: u64,
    dict: &dyn Dictionary,
    cache: &mut DecodeCache,
) -> Result<(ChangeRecord, StoredImages<'a>)> {
    let mut r = Reader::new(buf);
    let version = r.u8()?;
    if version != RECORD_FORMAT {
        return Err(Error::corruption(format!(
            "stored record has format {version}, expected {RECORD_FORMAT}"
        )));
    }
    let op = op_from(r.u8()?)?;
    let flags: u16 = r.small()?;
    let timestamp = r.u32()?;
    let checkpoint = Checkpoint::new(r.u32()?, r.varint()?);
    let safe_checkpoint = Checkpoint::new(r.u32()?, r.varint()?);
    let server_id = r.u32()?;
    let server_version = cache.server_version(r.varint()?, dict)?;
    let table = if flags & F_TABLE != 0 {
        Some(cache.table(r.varint()?, dict)?)
    } else {
        None
    };
    let gtid: Option<Arc<str>> = match (flags & F_GTID != 0, flags & F_GTID_SPLIT != 0) {
        (true, true) => {
            let src_id = r.varint()?;
            let src = match &cache.gtid_source {
                Some((i, s)) if *i == src_id => Arc::clone(s),
                _ => {
                    let s = dict.string(src_id)?;
                    cache.gtid_source = Some((src_id, Arc::clone(&s)));
                    s
                }
            };
            let n = r.varint()?;
            match &cache.gtid {
                Some((s, m, full)) if *m == n && Arc::ptr_eq(s, &src) => Some(Arc::clone(full)),
                _ => {
                    let sep =
                        if src.contains('-') && !src.contains(':') && src.matches('-').count() == 1
                        {
                            '-'
                        } else {
                            ':'
                        };
                    let full: Arc<str> = Arc::from(format!("{src}{sep}{n}"));
                    cache.gtid = Some((src, n, Arc::clone(&full)));
                    Some(full)
                }
            }
        }
        (true, false) => Some(Arc::from(r.string()?)),
        _ => None,
    };
    let xid = if flags & F_XID != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let thread_id = if flags & F_THREAD != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let database = if flags & F_DATABASE != 0 {
        Some(r.string()?)
    } else {
        None
    };
    let ddl = if flags & F_DDL != 0 {
        Some(Ddl {
            statement: r.string()?,
            session: r.string()?,
        })
    } else {
        None
    };
    let images = StoredImages {
        r,
        before: flags & F_BEFORE != 0,
        after: flags & F_AFTER != 0,
        ncols: table.as_ref().map_or(0, |t| t.fields.len()),
    };
    let rec = ChangeRecord {
        seq,
        checkpoint,
        safe_checkpoint,
        timestamp,
        op,
        table,
        database,
        before: None,
        after: None,
        ddl,
        gtid,
        xid,
        thread_id,
        server_id,
        server_version,
        flags: RecordFlags {
            names_missing: flags & F_NAMES_MISSING != 0,
            partial_image: flags & F_PARTIAL != 0,
        },
    };
    Ok((rec, images))
}

// ---------------------------------------------------------------------------------------------
// Tables.

fn kind_code(k: ColumnKind) -> u8 {
    use ColumnKind as K;
    match k {
        K::Integer => 0,
        K::Float => 1,
        K::Decimal => 2,
        K::Bit => 3,
        K::Year => 4,
        K::Date => 5,
        K::Time => 6,
        K::DateTime => 7,
        K::Timestamp => 8,
        K::String => 9,
        K::Binary => 10,
        K::Text => 11,
        K::Blob => 12,
        K::Enum => 13,
        K::Set => 14,
        K::Json => 15,
        K::Geometry => 16,
        K::Vector => 17,
        K::Null => 18,
    }
}

fn kind_from(c: u8) -> Result<ColumnKind> {
    use ColumnKind as K;
    Ok(match c {
        0 => K::Integer,
        1 => K::Float,
        2 => K::Decimal,
        3 => K::Bit,
        4 => K::Year,
        5 => K::Date,
        6 => K::Time,
        7 => K::DateTime,
        8 => K::Timestamp,
        9 => K::String,
        10 => K::Binary,
        11 => K::Text,
        12 => K::Blob,
        13 => K::Enum,
        14 => K::Set,
        15 => K::Json,
        16 => K::Geometry,
        17 => K::Vector,
        18 => K::Null,
        _ => return Err(bad("column kind")),
    })
}

/// The charset names a stored table may carry (stored by name, returned as `&'static str`).
fn static_charset(name: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "utf8mb4", "utf8mb3", "utf8", "latin1", "latin2", "latin5", "latin7", "gbk", "gb2312",
        "gb18030", "big5", "binary", "ascii", "ujis", "sjis", "cp932", "eucjpms", "euckr", "koi8r",
        "koi8u", "greek", "hebrew", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852",
        "cp866", "tis620", "ucs2", "utf16", "utf16le", "utf32", "armscii8", "dec8", "hp8", "swe7",
        "keybcs2", "macce", "macroman", "geostd8",
    ];
    KNOWN.iter().copied().find(|k| *k == name)
}

/// Appends the stored form of a table description.
pub fn encode_table(out: &mut Vec<u8>, t: &TableInfo) {
    out.push(RECORD_FORMAT);
    put_bytes(out, t.database.as_bytes());
    put_bytes(out, t.table.as_bytes());
    out.push(u8::from(t.names_missing));
    put_varint(out, t.fields.len() as u64);
    for f in &t.fields {
        put_bytes(out, f.name.as_bytes());
        out.push(f.type_code);
        put_bytes(out, f.type_name.as_bytes());
        out.push(kind_code(f.kind));
        put_bytes(out, f.charset.unwrap_or("").as_bytes());
        put_varint(out, f.collation.map_or(0, |c| u64::from(c) + 1));
        out.push(match f.unsigned {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        out.push(u8::from(f.nullable) | (u8::from(f.primary_key) << 1));
    }
    put_varint(out, t.primary_key.len() as u64);
    for &k in &t.primary_key {
        put_varint(out, k as u64);
    }
}

/// Decodes a stored table description.
///
/// # Errors
/// `Corruption` for malformed bytes.
pub fn decode_table(buf: &[u8]) -> Result<TableInfo> {
    let mut r = Reader::new(buf);
    if r.u8()? != RECORD_FORMAT {
        return Err(bad("table format"));
    }
    let database = r.string()?;
    let table = r.string()?;
    let names_missing = r.u8()? != 0;
    let n = r.len()?;
    let mut fields = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let type_code = r.u8()?;
        let type_name = r.string()?;
        let kind = kind_from(r.u8()?)?;
        let cs = r.string()?;
        let charset = if cs.is_empty() {
            None
        } else {
            Some(static_charset(&cs).ok_or_else(|| bad("charset"))?)
        };
        let collation = match r.varint()? {
            0 => None,
            c => Some(u16::try_from(c - 1).map_err(|_| bad("collation"))?),
        };
        let unsigned = match r.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(bad("signedness")),
        };
        let b = r.u8()?;
        fields.push(Field {
            name,
            type_code,
            type_name,
            kind,
            charset,
            collation,
            unsigned,
            nullable: b & 1 != 0,
            primary_key: b & 2 != 0,
        });
    }
    let npk = r.len()?;
    let mut primary_key = Vec::with_capacity(npk);
    for _ in 0..npk {
        let k: usize = r.small()?;
        if k >= fields.len() {
            return Err(bad("primary key column"));
        }
        primary_key.push(k);
    }
    if !r.is_empty() {
        return Err(bad("trailing bytes after a table"));
    }
    Ok(TableInfo::new(
        database,
        table,
        fields,
        primary_key,
        names_missing,
    ))
}

/// An in-memory [`Dictionary`] (tests, and tools that decode stored bytes on their own).
#[derive(Default)]
pub struct MemoryDictionary {
    tables: Vec<Arc<TableInfo>>,
    table_ids: std::collections::HashMap<Vec<u8>, u64>,
    strings: Vec<Arc<str>>,
    string_ids: std::collections::HashMap<Arc<str>, u64>,
}

impl Dictionary for MemoryDictionary {
    fn table_id(&mut self, table: &Arc<TableInfo>) -> u64 {
        let mut key = Vec::new();
        encode_table(&mut key, table);
        if let Some(&id) = self.table_ids.get(&key) {
            return id;
        }
        let id = self.tables.len() as u64;
        self.tables.push(Arc::clone(table));
        self.table_ids.insert(key, id);
        id
    }

    fn string_id(&mut self, s: &str) -> u64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u64;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&s));
        self.string_ids.insert(s, id);
        id
    }

    fn table(&self, id: u64) -> Result<Arc<TableInfo>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.tables.get(i))
            .cloned()
            .ok_or_else(|| bad("unknown table id"))
    }

    fn string(&self, id: u64) -> Result<Arc<str>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.strings.get(i))
            .cloned()
            .ok_or_else(|| bad("unknown string id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_json_diff_must_be_json() {
        for (text, ok) in [
            ("[]", true),
            (r#"[{"op":"replace"}]"#, true),
            ("", false),
            ("[", false),
        ] {
            let mut b = vec![V_JSONDIFF];
            put_bytes(&mut b, text.as_bytes());
            let r = get_value(&mut Reader::new(&b), &bytes::Bytes::new());
            assert_eq!(r.is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn gtid_split() {
        assert_eq!(split_gtid("0-1-123"), Some(("0-1", 123)));
        assert_eq!(
            split_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
            Some(("3e11fa47-71ca-11e1-9e33-c80aa9429562", 23))
        );
        assert_eq!(split_gtid("0-1-0123"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let dict = MemoryDictionary::default();
        let mut x: u32 = 12345;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = decode(&buf, &bytes::Bytes::new(), 1, &dict);
            let _ = decode_table(&buf);
        }
    }
}
