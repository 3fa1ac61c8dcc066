//! DTS Avro: the record's wire form (`Record.avsc`, shipped with the crate). The only file that
//! names `apache_avro`.
//!
//! Records are encoded by a direct writer of the Avro binary encoding (about 20x faster than
//! building an `apache_avro::types::Value` and encoding that). [`to_avro_value`] builds the same
//! record through apache-avro's value model; the tests check, record by record over the corpus,
//! that apache-avro encodes that value to exactly our bytes and decodes our bytes back to it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use apache_avro::types::Value as AvroValue;
use apache_avro::Schema;

use crate::error::{Error, Result};
use crate::record::{charset, codec};
use crate::record::{ChangeRecord, ColumnKind, Field, Op, TableInfo, Value};

/// The DTS schema text: a JSON array of named types, `Record` last.
pub const RECORD_SCHEMA: &str = include_str!("Record.avsc");

struct Schemas {
    all: Vec<Schema>,
    record: usize,
}

fn schemas() -> Result<&'static Schemas> {
    static S: OnceLock<std::result::Result<Schemas, String>> = OnceLock::new();
    S.get_or_init(|| {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(RECORD_SCHEMA).map_err(|e| e.to_string())?;
        let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
        let all = Schema::parse_list(texts).map_err(|e| e.to_string())?;
        let record = all
            .iter()
            .position(|s| s.name().is_some_and(|n| n.name == "Record"))
            .ok_or("Record.avsc has no Record type")?;
        Ok(Schemas { all, record })
    })
    .as_ref()
    .map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Internal,
            format!("DTS schema: {e}"),
        )
    })
}

/// Decodes DTS Avro bytes with apache-avro, reading with the `Record` type.
///
/// # Errors
/// `Corruption` when the bytes are not a valid `Record`.
pub fn decode_with_apache_avro(bytes: &[u8]) -> Result<AvroValue> {
    let s = schemas()?;
    let record = &s.all[s.record];
    let refs: Vec<&Schema> = s.all.iter().collect();
    let mut r = bytes;
    let v = apache_avro::from_avro_datum_schemata(record, refs, &mut r, None)
        .map_err(|e| Error::corruption(format!("not a DTS Avro record: {e}")))?;
    if !r.is_empty() {
        return Err(Error::corruption("trailing bytes after a DTS Avro record"));
    }
    Ok(v)
}

/// Encodes an apache-avro value of the `Record` type with apache-avro (schema-validated).
///
/// # Errors
/// `InvalidArgument` when the value does not match the schema.
pub fn encode_with_apache_avro(value: AvroValue) -> Result<Vec<u8>> {
    let s = schemas()?;
    let record = &s.all[s.record];
    let refs: Vec<&Schema> = s.all.iter().collect();
    apache_avro::to_avro_datum_schemata(record, refs, value)
        .map_err(|e| Error::invalid(format!("value does not match the DTS schema: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The fast writer.

fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, s: &str) {
    bytes(out, s.as_bytes());
}

fn op_ordinal(op: Op) -> i64 {
    match op {
        Op::Insert => 0,
        Op::Update => 1,
        Op::Delete => 2,
        Op::Ddl => 3,
        Op::Begin => 4,
        Op::Commit => 5,
        Op::Heartbeat => 8,
    }
}

/// `db.table` with `.` inside a name written as `\u002E`. For DDL: the database the statement
/// acts on (`CREATE TABLE other.t` names `other`), else the session's default database.
fn object_name(rec: &ChangeRecord) -> Option<String> {
    let esc = |s: &str| s.replace('.', "\\u002E");
    match (rec.op, rec.table.as_deref()) {
        (Op::Ddl, _) => {
            let stmt = rec.ddl.as_ref().map_or("", |d| d.statement.as_str());
            match crate::filter::ddl_object(stmt).0 {
                Some(db) => Some(esc(&db)),
                None => rec.database_name().map(esc),
            }
        }
        (_, Some(t)) => Some(format!("{}.{}", esc(&t.database), esc(&t.table))),
        _ => None,
    }
}

/// The `pk_uk_info` tag: `{"PRIMARY":["id"]}`, or `{}` without a key.
fn pk_uk_info(table: &TableInfo) -> String {
    if table.primary_key.is_empty() {
        return "{}".into();
    }
    let mut pk = String::from("{\"PRIMARY\":[");
    for (i, &k) in table.primary_key.iter().enumerate() {
        if i > 0 {
            pk.push(',');
        }
        if let Some(f) = table.fields.get(k) {
            crate::record::json::push_str(&mut pk, &f.name);
        }
    }
    pk.push_str("]}");
    pk
}

fn tags(rec: &ChangeRecord) -> Vec<(&'static str, String)> {
    let mut t = Vec::with_capacity(5);
    if let Some(table) = rec.table.as_deref() {
        t.push(("pk_uk_info", pk_uk_info(table)));
    }
    if let Some(th) = rec.thread_id {
        t.push(("thread_id", th.to_string()));
    }
    t.push(("server_id", rec.server_id.to_string()));
    t.push(("metaVersion", "0".to_owned()));
    if let Some(g) = &rec.gtid {
        t.push(("GTID", g.to_string()));
    }
    t
}

fn txid(rec: &ChangeRecord) -> String {
    match (&rec.gtid, rec.xid) {
        (Some(g), _) => g.to_string(),
        (None, Some(x)) => x.to_string(),
        _ => "0".to_owned(),
    }
}

fn integer_precision(f: &Field) -> i64 {
    match f.type_code {
        1 => 1,
        2 => 2,
        9 => 3,
        3 => 4,
        _ => 8,
    }
}

fn char_charset(f: &Field) -> &str {
    match f.kind {
        ColumnKind::Binary => "binary",
        _ => f.charset.map_or("binary", charset::dts_name),
    }
}

/// Digits and scale of a plain decimal string.
fn decimal_precision(s: &str) -> (i64, i64) {
    let digits = s.bytes().filter(u8::is_ascii_digit).count() as i64;
    let scale = s.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    (digits, scale)
}

fn float_as_double(v: &Value) -> f64 {
    match v {
        // The f64 nearest the decimal MySQL shows for the FLOAT.
        Value::Float(f) => format!("{f}").parse().unwrap_or(f64::from(*f)),
        Value::Double(d) => *d,
        _ => 0.0,
    }
}

/// The (year, month, day, hour, minute, second, micros) of a DateTime-mapped value.
type DtParts = [Option<i64>; 7];

fn datetime_parts(v: &Value) -> Option<DtParts> {
    Some(match *v {
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => [
            Some(year.into()),
            Some(month.into()),
            Some(day.into()),
            Some(hour.into()),
            Some(minute.into()),
            Some(second.into()),
            Some(micros.into()),
        ],
        Value::Date { year, month, day } => [
            Some(year.into()),
            Some(month.into()),
            Some(day.into()),
            None,
            None,
            None,
            None,
        ],
        Value::Time {
            negative,
            hour,
            minute,
            second,
            micros,
            ..
        } => {
            let s = if negative { -1 } else { 1 };
            [
                None,
                None,
                None,
                Some(s * i64::from(hour)),
                Some(s * i64::from(minute)),
                Some(s * i64::from(second)),
                Some(s * i64::from(micros)),
            ]
        }
        Value::Year(y) => [Some(y.into()), None, None, None, None, None, None],
        _ => return None,
    })
}

/// One image value as (union branch, payload) in a neutral form both encoders share.
enum Item<'a> {
    Null,
    Integer(i64, String),
    Character(&'a str, &'a [u8]),
    Decimal(String, i64, i64),
    Float(f64, i64),
    Timestamp(i64, i64),
    DateTime(DtParts),
    Geometry(&'a [u8]),
    Binary(&'static str, &'a [u8]),
    Text(&'static str, String),
    None,
}

fn item<'a>(v: &'a Value, f: &'a Field) -> Item<'a> {
    match v {
        Value::Null => Item::Null,
        // The new document is not in the binlog: "value not present".
        Value::Missing | Value::JsonDiff(_) => Item::None,
        Value::Int(i) => Item::Integer(integer_precision(f), i.to_string()),
        Value::UInt(u) => Item::Integer(integer_precision(f), u.to_string()),
        Value::Bit(b) => Item::Integer(i64::from(bit_bytes(f)), b.to_string()),
        Value::Float(_) | Value::Double(_) => Item::Float(
            float_as_double(v),
            if matches!(v, Value::Float(_)) { 4 } else { 8 },
        ),
        Value::Decimal(d) => {
            let s = d.to_string();
            let (p, sc) = decimal_precision(&s);
            Item::Decimal(s, p, sc)
        }
        Value::Timestamp {
            seconds, micros, ..
        } => Item::Timestamp(*seconds, i64::from(*micros)),
        Value::Date { .. } | Value::DateTime { .. } | Value::Time { .. } | Value::Year(_) => {
            Item::DateTime(datetime_parts(v).unwrap_or_default())
        }
        Value::Bytes(b) => match f.kind {
            ColumnKind::Blob | ColumnKind::Vector => Item::Binary("BLOB", b),
            ColumnKind::Text => Item::Binary("TEXT", b),
            ColumnKind::Json => Item::Text("JSON", String::from_utf8_lossy(b).into_owned()),
            _ => Item::Character(char_charset(f), b),
        },
        Value::Enum { index, label } => Item::Text(
            "ENUM",
            label
                .as_ref()
                .map_or_else(|| index.to_string(), |l| text_of(l, f)),
        ),
        Value::Set { bits, labels } => Item::Text(
            "SET",
            labels
                .as_ref()
                .map_or_else(|| bits.to_string(), |l| text_of(l, f)),
        ),
        Value::Json(s) => Item::Text("JSON", s.clone()),
        Value::Geometry { wkb, .. } => Item::Geometry(wkb),
    }
}

fn bit_bytes(f: &Field) -> u32 {
    f.type_name
        .trim_start_matches("bit(")
        .trim_end_matches(')')
        .parse::<u32>()
        .map_or(8, |n| n.div_ceil(8))
}

fn text_of(b: &[u8], f: &Field) -> String {
    charset::decode(b, f.charset).map_or_else(
        || String::from_utf8_lossy(b).into_owned(),
        |s| s.into_owned(),
    )
}

fn write_item(out: &mut Vec<u8>, it: &Item<'_>) {
    let opt_int = |out: &mut Vec<u8>, v: Option<i64>| match v {
        Some(x) => {
            long(out, 1);
            long(out, x);
        }
        None => long(out, 0),
    };
    match it {
        Item::Null => long(out, 0),
        Item::Integer(p, v) => {
            long(out, 1);
            long(out, *p);
            string(out, v);
        }
        Item::Character(cs, b) => {
            long(out, 2);
            string(out, cs);
            bytes(out, b);
        }
        Item::Decimal(v, p, s) => {
            long(out, 3);
            string(out, v);
            long(out, *p);
            long(out, *s);
        }
        Item::Float(d, p) => {
            long(out, 4);
            out.extend_from_slice(&d.to_le_bytes());
            long(out, *p);
            long(out, 0);
        }
        Item::Timestamp(s, us) => {
            long(out, 5);
            long(out, *s);
            long(out, *us);
        }
        Item::DateTime(parts) => {
            long(out, 6);
            for p in parts {
                opt_int(out, *p);
            }
        }
        Item::Geometry(b) => {
            long(out, 8);
            string(out, "WKB");
            bytes(out, b);
        }
        Item::Binary(t, b) => {
            long(out, 10);
            string(out, t);
            bytes(out, b);
        }
        Item::Text(t, s) => {
            long(out, 11);
            string(out, t);
            string(out, s);
        }
        Item::None => {
            long(out, 12);
            long(out, 1);
        }
    }
}

/// A number's decimal digits as an Avro string.
fn string_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    string(out, b.format(v));
}

/// A checkpoint (`offset@file_index`) as an Avro string, without an intermediate `String`.
fn string_checkpoint(out: &mut Vec<u8>, cp: crate::record::Checkpoint) {
    let mut o = itoa::Buffer::new();
    let mut f = itoa::Buffer::new();
    let (o, f) = (o.format(cp.offset), f.format(cp.file_index));
    long(out, (o.len() + 1 + f.len()) as i64);
    out.extend_from_slice(o.as_bytes());
    out.push(b'@');
    out.extend_from_slice(f.as_bytes());
}

/// What is the same for every record of one table: the encoded `objectName` branch, the
/// `pk_uk_info` tag entry and the `fields` array.
struct TableParts {
    _table: Arc<TableInfo>,
    object_name: Vec<u8>,
    pk_tag: Vec<u8>,
    fields: Vec<u8>,
}

impl TableParts {
    fn new(table: &Arc<TableInfo>) -> Self {
        let esc = |s: &str| s.replace('.', "\\u002E");
        let mut object_name = Vec::new();
        long(&mut object_name, 1);
        string(
            &mut object_name,
            &format!("{}.{}", esc(&table.database), esc(&table.table)),
        );
        let mut pk_tag = Vec::new();
        string(&mut pk_tag, "pk_uk_info");
        string(&mut pk_tag, &pk_uk_info(table));
        let mut fields = Vec::new();
        long(&mut fields, 2);
        if !table.fields.is_empty() {
            long(&mut fields, table.fields.len() as i64);
            for f in &table.fields {
                string(&mut fields, &f.name);
                long(&mut fields, i64::from(f.type_code));
            }
        }
        long(&mut fields, 0);
        Self {
            _table: Arc::clone(table),
            object_name,
            pk_tag,
            fields,
        }
    }
}

/// Writes DTS Avro records, remembering what is the same for every record of a table (its
/// object name, key tag and field list) and reusing its scratch buffers: no allocation per
/// record once a table was seen. Use one per stream of records; [`write_record`] is the
/// one-off form.
#[derive(Default)]
pub struct AvroWriter {
    /// By the address of the table's `Arc` (the entry holds a clone, so it stays valid).
    tables: HashMap<usize, TableParts, std::hash::BuildHasherDefault<AddressHasher>>,
    scratch: String,
}

impl std::fmt::Debug for AvroWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroWriter")
            .field("tables", &self.tables.len())
            .finish()
    }
}

/// Hashes the address of a table's `Arc` (the writer's key) with one multiplication: SipHash
/// took 3 % of the Avro encoding's time, looked up three times per record.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Tables remembered by one writer at most (a schema change makes a new `TableInfo`).
const WRITER_TABLES: usize = 4096;

impl AvroWriter {
    /// A new writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn parts(&mut self, table: &Arc<TableInfo>) -> &TableParts {
        let key = Arc::as_ptr(table) as usize;
        if !self.tables.contains_key(&key) && self.tables.len() >= WRITER_TABLES {
            self.tables.clear();
        }
        self.tables
            .entry(key)
            .or_insert_with(|| TableParts::new(table))
    }

    /// Appends the DTS Avro encoding of `rec` (no framing).
    pub fn write(&mut self, out: &mut Vec<u8>, rec: &ChangeRecord) {
        // Decoded images cannot fail.
        let _ = self.write_with(out, rec, &mut |w, out, after, fields| {
            let image = if after { &rec.after } else { &rec.before };
            w.write_image(out, image.as_ref(), fields);
            Ok(())
        });
    }

    /// Appends the DTS Avro encoding of a record in its stored form (`stored`, record `seq`,
    /// with the dictionary it was stored with): the same bytes as [`AvroWriter::write`] of the
    /// decoded record, without building its values. Returns the record without its images
    /// (`before` and `after` are `None`). On an error `out` is as it was.
    ///
    /// # Errors
    /// `Corruption` for malformed bytes or unknown ids, as [`codec::decode`].
    pub fn write_from_stored(
        &mut self,
        out: &mut Vec<u8>,
        stored: &[u8],
        seq: u64,
        dict: &dyn codec::Dictionary,
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        let len = out.len();
        let (head, mut images) = codec::decode_head(stored, seq, dict, cache)?;
        self.write_stored(out, &head, &mut images)
            .inspect_err(|_| out.truncate(len))?;
        Ok(head)
    }

    /// Appends the DTS Avro encoding of the stored record `head` (decoded without its images)
    /// whose images are still in their stored bytes: the same bytes as [`AvroWriter::write`] of
    /// the whole record, without building its values. On an error, `out` may hold a part of
    /// the record: the caller truncates it.
    fn write_stored(
        &mut self,
        out: &mut Vec<u8>,
        head: &ChangeRecord,
        images: &mut codec::StoredImages<'_>,
    ) -> Result<()> {
        let mut after_read = false;
        self.write_with(out, head, &mut |w, out, after, fields| {
            after_read |= after;
            if !images.has(after) {
                long(out, 0);
                return Ok(());
            }
            long(out, 2);
            let n = images.start()?;
            if n > 0 {
                long(out, n as i64);
                for f in fields.iter().take(n) {
                    match images.value()? {
                        codec::ValueRef::Bytes(b) => write_bytes(out, b, f),
                        codec::ValueRef::Json(s) => write_json(out, s),
                        codec::ValueRef::Owned(v) => w.write_value(out, &v, f),
                    }
                }
            }
            long(out, 0);
            Ok(())
        })?;
        // A DDL record's `afterImages` is its statement: a stored after image is unused.
        if images.has(true) && !after_read {
            images.skip()?;
        }
        images.finish()
    }

    /// The record around its images, which `image` writes (`after`: the after image, else the
    /// before image) with the table's fields.
    fn write_with(
        &mut self,
        out: &mut Vec<u8>,
        rec: &ChangeRecord,
        image: &mut ImageWriter<'_>,
    ) -> Result<()> {
        long(out, 0); // version
        long(out, rec.seq as i64);
        long(out, i64::from(rec.timestamp));
        string_checkpoint(out, rec.checkpoint);
        string_checkpoint(out, rec.safe_checkpoint);
        match (&rec.gtid, rec.xid) {
            (Some(g), _) => string(out, g),
            (None, Some(x)) => string_int(out, x),
            _ => string(out, "0"),
        }
        long(out, 0); // sourceType MySQL
        string(out, &rec.server_version);
        long(out, op_ordinal(rec.op));
        let table = rec.table.as_ref().filter(|_| rec.op != Op::Ddl);
        match (rec.op, table) {
            (_, Some(t)) => {
                let p = self.parts(t);
                out.extend_from_slice(&p.object_name);
            }
            _ => match object_name(rec) {
                Some(n) => {
                    long(out, 1);
                    string(out, &n);
                }
                None => long(out, 0),
            },
        }
        long(out, 0); // processTimestamps: null
                      // tags: pk_uk_info (with a table), thread_id, server_id, metaVersion, GTID.
        let n = 2
            + i64::from(rec.table.is_some())
            + i64::from(rec.thread_id.is_some())
            + i64::from(rec.gtid.is_some());
        long(out, n);
        if let Some(t) = rec.table.as_ref() {
            let p = self.parts(t);
            out.extend_from_slice(&p.pk_tag);
        }
        if let Some(th) = rec.thread_id {
            string(out, "thread_id");
            string_int(out, th);
        }
        string(out, "server_id");
        string_int(out, rec.server_id);
        string(out, "metaVersion");
        string(out, "0");
        if let Some(g) = &rec.gtid {
            string(out, "GTID");
            string(out, g);
        }
        long(out, 0);
        let fields = rec.fields();
        match rec.table.as_ref() {
            Some(t) if rec.op.is_dml() => {
                let p = self.parts(t);
                out.extend_from_slice(&p.fields);
            }
            _ => long(out, 0),
        }
        image(self, out, false, fields)?;
        match (&rec.ddl, rec.op) {
            (Some(ddl), Op::Ddl) => {
                long(out, 1);
                string(out, &ddl.statement);
            }
            _ => image(self, out, true, fields)?,
        }
        long(out, i64::from(rec.timestamp)); // bornTimestamp
        Ok(())
    }

    fn write_image(&mut self, out: &mut Vec<u8>, image: Option<&Vec<Value>>, fields: &[Field]) {
        match image {
            None => long(out, 0),
            Some(values) => {
                long(out, 2);
                if !values.is_empty() {
                    long(out, values.len() as i64);
                    for (v, f) in values.iter().zip(fields) {
                        self.write_value(out, v, f);
                    }
                }
                long(out, 0);
            }
        }
    }

    /// One value, as [`item`] + [`write_item`] would write it, without building the item.
    fn write_value(&mut self, out: &mut Vec<u8>, v: &Value, f: &Field) {
        match v {
            Value::Int(i) => {
                long(out, 1);
                long(out, integer_precision(f));
                string_int(out, *i);
            }
            Value::UInt(u) => {
                long(out, 1);
                long(out, integer_precision(f));
                string_int(out, *u);
            }
            Value::Decimal(d) => {
                self.scratch.clear();
                d.write_to(&mut self.scratch);
                let (p, sc) = decimal_precision(&self.scratch);
                long(out, 3);
                string(out, &self.scratch);
                long(out, p);
                long(out, sc);
            }
            Value::Bytes(b) => write_bytes(out, b, f),
            Value::Json(s) => write_json(out, s),
            _ => write_item(out, &item(v, f)),
        }
    }
}

/// A string or binary value, as [`item`] + [`write_item`] would write it.
fn write_bytes(out: &mut Vec<u8>, b: &[u8], f: &Field) {
    match f.kind {
        ColumnKind::Blob | ColumnKind::Vector => {
            long(out, 10);
            string(out, "BLOB");
            bytes(out, b);
        }
        ColumnKind::Text => {
            long(out, 10);
            string(out, "TEXT");
            bytes(out, b);
        }
        ColumnKind::Json => write_json(out, &String::from_utf8_lossy(b)),
        _ => {
            long(out, 2);
            string(out, char_charset(f));
            bytes(out, b);
        }
    }
}

/// A JSON document, as [`item`] + [`write_item`] would write it.
fn write_json(out: &mut Vec<u8>, s: &str) {
    long(out, 11);
    string(out, "JSON");
    string(out, s);
}

/// Writes one image of a record for [`AvroWriter::write_with`]: `(writer, out, after, fields)`,
/// `after` for the after image, else the before image.
type ImageWriter<'a> = dyn FnMut(&mut AvroWriter, &mut Vec<u8>, bool, &[Field]) -> Result<()> + 'a;

/// Appends the DTS Avro encoding of `rec` (no framing). For many records, an [`AvroWriter`]
/// is faster.
pub fn write_record(out: &mut Vec<u8>, rec: &ChangeRecord) {
    AvroWriter::new().write(out, rec);
}

/// The DTS Avro encoding of `rec`.
#[must_use]
pub fn to_avro(rec: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_record(&mut out, rec);
    out
}

// ---------------------------------------------------------------------------------------------
// The same record through apache-avro's value model (the reference the fast writer is checked
// against).

fn rec(fields: Vec<(&str, AvroValue)>) -> AvroValue {
    AvroValue::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn item_value(it: &Item<'_>) -> AvroValue {
    let u = |i: u32, v: AvroValue| AvroValue::Union(i, Box::new(v));
    let opt = |v: Option<i64>| match v {
        Some(x) => AvroValue::Union(1, Box::new(AvroValue::Int(x as i32))),
        None => AvroValue::Union(0, Box::new(AvroValue::Null)),
    };
    match it {
        Item::Null => u(0, AvroValue::Null),
        Item::Integer(p, v) => u(
            1,
            rec(vec![
                ("precision", AvroValue::Int(*p as i32)),
                ("value", AvroValue::String(v.clone())),
            ]),
        ),
        Item::Character(cs, b) => u(
            2,
            rec(vec![
                ("charset", AvroValue::String((*cs).to_owned())),
                ("value", AvroValue::Bytes(b.to_vec())),
            ]),
        ),
        Item::Decimal(v, p, s) => u(
            3,
            rec(vec![
                ("value", AvroValue::String((*v).to_owned())),
                ("precision", AvroValue::Int(*p as i32)),
                ("scale", AvroValue::Int(*s as i32)),
            ]),
        ),
        Item::Float(d, p) => u(
            4,
            rec(vec![
                ("value", AvroValue::Double(*d)),
                ("precision", AvroValue::Int(*p as i32)),
                ("scale", AvroValue::Int(0)),
            ]),
        ),
        Item::Timestamp(s, us) => u(
            5,
            rec(vec![
                ("timestamp", AvroValue::Long(*s)),
                ("millis", AvroValue::Int(*us as i32)),
            ]),
        ),
        Item::DateTime(p) => u(
            6,
            rec(vec![
                ("year", opt(p[0])),
                ("month", opt(p[1])),
                ("day", opt(p[2])),
                ("hour", opt(p[3])),
                ("minute", opt(p[4])),
                ("second", opt(p[5])),
                ("millis", opt(p[6])),
            ]),
        ),
        Item::Geometry(b) => u(
            8,
            rec(vec![
                ("type", AvroValue::String("WKB".into())),
                ("value", AvroValue::Bytes(b.to_vec())),
            ]),
        ),
        Item::Binary(t, b) => u(
            10,
            rec(vec![
                ("type", AvroValue::String((*t).into())),
                ("value", AvroValue::Bytes(b.to_vec())),
            ]),
        ),
        Item::Text(t, s) => u(
            11,
            rec(vec![
                ("type", AvroValue::String((*t).into())),
                ("value", AvroValue::String(s.clone())),
            ]),
        ),
        Item::None => u(12, AvroValue::Enum(1, "NONE".into())),
    }
}

fn image_value(image: Option<&Vec<Value>>, fields: &[Field]) -> AvroValue {
    match image {
        None => AvroValue::Union(0, Box::new(AvroValue::Null)),
        Some(values) => AvroValue::Union(
            2,
            Box::new(AvroValue::Array(
                values
                    .iter()
                    .zip(fields)
                    .map(|(v, f)| item_value(&item(v, f)))
                    .collect(),
            )),
        ),
    }
}

const OPS: [&str; 9] = [
    "INSERT",
    "UPDATE",
    "DELETE",
    "DDL",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "ABORT",
    "HEARTBEAT",
];

/// `rec` as an apache-avro value of the DTS `Record` type.
#[must_use]
pub fn to_avro_value(r: &ChangeRecord) -> AvroValue {
    let fields = r.fields();
    let op = op_ordinal(r.op) as u32;
    let field_list = if r.table.is_some() && r.op.is_dml() {
        AvroValue::Union(
            2,
            Box::new(AvroValue::Array(
                fields
                    .iter()
                    .map(|f| {
                        rec(vec![
                            ("name", AvroValue::String(f.name.clone())),
                            ("dataTypeNumber", AvroValue::Int(i32::from(f.type_code))),
                        ])
                    })
                    .collect(),
            )),
        )
    } else {
        AvroValue::Union(0, Box::new(AvroValue::Null))
    };
    let after = match (&r.ddl, r.op) {
        (Some(ddl), Op::Ddl) => {
            AvroValue::Union(1, Box::new(AvroValue::String(ddl.statement.clone())))
        }
        _ => image_value(r.after.as_ref(), fields),
    };
    rec(vec![
        ("version", AvroValue::Int(0)),
        ("id", AvroValue::Long(r.seq as i64)),
        ("sourceTimestamp", AvroValue::Long(i64::from(r.timestamp))),
        (
            "sourcePosition",
            AvroValue::String(r.checkpoint.to_string()),
        ),
        (
            "safeSourcePosition",
            AvroValue::String(r.safe_checkpoint.to_string()),
        ),
        ("sourceTxid", AvroValue::String(txid(r))),
        (
            "source",
            rec(vec![
                ("sourceType", AvroValue::Enum(0, "MySQL".into())),
                ("version", AvroValue::String(r.server_version.to_string())),
            ]),
        ),
        (
            "operation",
            AvroValue::Enum(
                op,
                OPS.get(op as usize).copied().unwrap_or("HEARTBEAT").into(),
            ),
        ),
        (
            "objectName",
            match object_name(r) {
                Some(n) => AvroValue::Union(1, Box::new(AvroValue::String(n))),
                None => AvroValue::Union(0, Box::new(AvroValue::Null)),
            },
        ),
        (
            "processTimestamps",
            AvroValue::Union(0, Box::new(AvroValue::Null)),
        ),
        (
            "tags",
            AvroValue::Map(
                tags(r)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), AvroValue::String(v)))
                    .collect(),
            ),
        ),
        ("fields", field_list),
        ("beforeImages", image_value(r.before.as_ref(), fields)),
        ("afterImages", after),
        ("bornTimestamp", AvroValue::Long(i64::from(r.timestamp))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses() {
        let s = schemas().unwrap();
        assert_eq!(s.all[s.record].name().unwrap().name, "Record");
    }

    #[test]
    fn zigzag() {
        let mut v = Vec::new();
        long(&mut v, -1);
        long(&mut v, 64);
        assert_eq!(v, vec![1, 0x80, 0x01]);
    }
}
