//! DTS Avro over the whole binlog corpus.
//!
//! For every record of every binlog in `tests/data/binlogs` (files that stop with a typed error
//! contribute the records decoded before it):
//! - the fast writer's bytes decode with apache-avro to exactly [`to_avro_value`];
//! - apache-avro accepts [`to_avro_value`] against the schema and decodes its own bytes back to it;
//! - spot semantics of `DTS-AVRO.md` hold on the decoded value (operation ordinals, objectName,
//!   positions, fields, images, per-value union branches).
//!
//! `fastavro_cross_check` runs `tests/avro_fastavro.py` (a second, independent Avro reader) when
//! Python has `fastavro`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use apache_avro::types::Value as Av;
use changetrack::record::avro::{
    decode_with_apache_avro, encode_with_apache_avro, to_avro, to_avro_value, RECORD_SCHEMA,
};
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, Checkpoint, ColumnKind, Field, Op, Value,
};

/// Extensions of the corpus's oracle and documentation files (everything else is a binlog).
const SKIP_EXT: [&str; 5] = ["txt", "tsv", "sql", "md", "sh"];

/// `type` strings existing readers accept in `BinaryObject` / `TextObject`.
const OBJECT_TYPES: [&str; 17] = [
    "BINARY", "BOOL", "BLOB", "XML", "JSON", "TEXT", "BFILE", "RAW", "LONG_RAW", "ROWID", "UROWID",
    "ENUM", "SET", "BYTEA", "GEOMETRY", "XTYPE", "UUID",
];

/// Failures reported per test before the rest are only counted.
const MAX_SHOWN: usize = 40;

struct Decoded {
    path: PathBuf,
    records: Vec<ChangeRecord>,
    error: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if !p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SKIP_EXT.contains(&e))
        {
            out.push(p);
        }
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&corpus_dir(), &mut files);
    files
}

/// Every corpus file with the records decoded from it (up to its first error, if any).
fn corpus() -> &'static [Decoded] {
    static CORPUS: OnceLock<Vec<Decoded>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let files = corpus_files();
        assert!(
            files.len() > 50,
            "binlog corpus not found under {}",
            corpus_dir().display()
        );
        files
            .into_iter()
            .map(|path| {
                let mut records = Vec::new();
                let mut error = None;
                match BinlogReader::open(std::slice::from_ref(&path), BinlogOptions::default()) {
                    Ok(reader) => {
                        for r in reader {
                            match r {
                                Ok(rec) => records.push(rec),
                                Err(e) => {
                                    error = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => error = Some(e.to_string()),
                }
                Decoded {
                    path,
                    records,
                    error,
                }
            })
            .collect()
    })
}

fn rel(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(p)
        .display()
        .to_string()
}

fn ctx(d: &Decoded, i: usize, rec: &ChangeRecord) -> String {
    format!(
        "{} record #{i} ({} at {})",
        rel(&d.path),
        rec.op,
        rec.checkpoint
    )
}

/// Collects failures; panics at the end with the first [`MAX_SHOWN`] and the total.
#[derive(Default)]
struct Failures {
    shown: Vec<String>,
    total: usize,
}

impl Failures {
    fn add(&mut self, msg: String) {
        self.total += 1;
        if self.shown.len() < MAX_SHOWN {
            self.shown.push(msg);
        }
    }

    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.add(msg());
        }
    }

    fn finish(self, what: &str) {
        if self.total > 0 {
            let mut s = format!("{what}: {} failures\n", self.total);
            for m in &self.shown {
                let _ = writeln!(s, "  - {m}");
            }
            panic!("{s}");
        }
    }
}

/// Where two apache-avro values differ (`None` when equal). Maps compare by key, doubles by bits.
fn diff(a: &Av, b: &Av, at: &str) -> Option<String> {
    match (a, b) {
        (Av::Record(x), Av::Record(y)) => {
            let xn: Vec<&str> = x.iter().map(|(k, _)| k.as_str()).collect();
            let yn: Vec<&str> = y.iter().map(|(k, _)| k.as_str()).collect();
            if xn != yn {
                return Some(format!("{at}: record fields {xn:?} vs {yn:?}"));
            }
            x.iter()
                .zip(y)
                .find_map(|((k, va), (_, vb))| diff(va, vb, &format!("{at}.{k}")))
        }
        (Av::Union(i, x), Av::Union(j, y)) => {
            if i != j {
                return Some(format!("{at}: union branch {i} ({x:?}) vs {j} ({y:?})"));
            }
            diff(x, y, at)
        }
        (Av::Array(x), Av::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{at}: array of {} vs {} items", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| diff(va, vb, &format!("{at}[{i}]")))
        }
        (Av::Map(x), Av::Map(y)) => {
            let xk: BTreeMap<&String, &Av> = x.iter().collect();
            let yk: BTreeMap<&String, &Av> = y.iter().collect();
            if !xk.keys().eq(yk.keys()) {
                return Some(format!("{at}: map keys {:?} vs {:?}", xk.keys(), yk.keys()));
            }
            xk.iter()
                .find_map(|(k, va)| diff(va, yk[k], &format!("{at}[{k:?}]")))
        }
        (Av::Double(x), Av::Double(y)) => {
            (x.to_bits() != y.to_bits()).then(|| format!("{at}: {x:?} vs {y:?}"))
        }
        _ => (a != b).then(|| format!("{at}: {a:?} vs {b:?}")),
    }
}

#[test]
fn corpus_decodes_to_many_records() {
    let c = corpus();
    let records: usize = c.iter().map(|d| d.records.len()).sum();
    let with_errors: Vec<String> = c
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| format!("{}: {e}", rel(&d.path))))
        .collect();
    eprintln!(
        "{} files, {records} records, {} files end in an error",
        c.len(),
        with_errors.len()
    );
    for e in &with_errors {
        eprintln!("  {e}");
    }
    assert!(
        records > 1000,
        "only {records} records decoded from the corpus"
    );
}

/// The fast writer and apache-avro agree on every record, both ways.
#[test]
fn fast_writer_matches_apache_avro() {
    let mut f = Failures::default();
    let mut checked = 0usize;
    for d in corpus() {
        // One writer for the whole file, as streams use it (its per-table parts are reused).
        let mut writer = changetrack::record::avro::AvroWriter::new();
        for (i, rec) in d.records.iter().enumerate() {
            checked += 1;
            let expected = to_avro_value(rec);
            let bytes = to_avro(rec);
            let mut streamed = Vec::new();
            writer.write(&mut streamed, rec);
            if streamed != bytes {
                f.add(format!(
                    "{}: a reused AvroWriter writes other bytes than to_avro",
                    ctx(d, i, rec)
                ));
            }
            match decode_with_apache_avro(&bytes) {
                Ok(got) => {
                    if let Some(why) = diff(&got, &expected, "Record") {
                        f.add(format!(
                            "{}: our bytes decode differently from to_avro_value: {why}",
                            ctx(d, i, rec)
                        ));
                    }
                }
                Err(e) => f.add(format!(
                    "{}: apache-avro cannot decode our bytes: {e}",
                    ctx(d, i, rec)
                )),
            }
            match encode_with_apache_avro(expected.clone()) {
                Ok(theirs) => match decode_with_apache_avro(&theirs) {
                    Ok(back) => {
                        if let Some(why) = diff(&back, &expected, "Record") {
                            f.add(format!(
                                "{}: apache-avro round trip differs: {why}",
                                ctx(d, i, rec)
                            ));
                        }
                    }
                    Err(e) => f.add(format!(
                        "{}: apache-avro cannot decode its own bytes: {e}",
                        ctx(d, i, rec)
                    )),
                },
                Err(e) => f.add(format!(
                    "{}: to_avro_value fails schema validation: {e}",
                    ctx(d, i, rec)
                )),
            }
        }
    }
    eprintln!("fast_writer_matches_apache_avro: {checked} records checked");
    assert!(checked > 1000, "only {checked} records checked");
    f.finish("fast writer vs apache-avro");
}

// ---------------------------------------------------------------------------------------------
// Spot semantics of DTS-AVRO.md, on the value apache-avro decodes from our bytes.

fn field<'a>(v: &'a Av, name: &str) -> &'a Av {
    match v {
        Av::Record(fs) => fs
            .iter()
            .find_map(|(k, x)| (k == name).then_some(x))
            .unwrap_or_else(|| panic!("no field {name} in {v:?}")),
        other => panic!("not a record: {other:?}"),
    }
}

fn null() -> Av {
    Av::Union(0, Box::new(Av::Null))
}

fn string(s: impl Into<String>) -> Av {
    Av::String(s.into())
}

fn int(i: i32) -> Av {
    Av::Int(i)
}

fn record(fields: &[(&str, Av)]) -> Av {
    Av::Record(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// The symbols of the schema's `Operation` enum, in ordinal order.
fn operation_symbols() -> Vec<String> {
    let types: serde_json::Value =
        serde_json::from_str(RECORD_SCHEMA).expect("Record.avsc is JSON");
    let record = types
        .as_array()
        .and_then(|a| a.last())
        .expect("Record last");
    let op = record["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "operation")
        .expect("operation");
    op["type"]["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s.as_str().expect("symbol").to_owned())
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('.', "\\u002E")
}

fn integer_precision(type_code: u8) -> Option<i32> {
    Some(match type_code {
        1 => 1,
        2 => 2,
        9 => 3,
        3 => 4,
        8 => 8,
        _ => return None,
    })
}

fn opt_int(v: Option<i64>) -> Av {
    match v {
        Some(x) => Av::Union(
            1,
            Box::new(Av::Int(i32::try_from(x).expect("date part fits an int"))),
        ),
        None => null(),
    }
}

fn datetime(parts: [Option<i64>; 7]) -> Av {
    let names = ["year", "month", "day", "hour", "minute", "second", "millis"];
    Av::Union(
        6,
        Box::new(Av::Record(
            names
                .iter()
                .zip(parts)
                .map(|(n, p)| ((*n).to_owned(), opt_int(p)))
                .collect(),
        )),
    )
}

/// What the spec says one image value must be, as an apache-avro value; `None` when the spec
/// leaves the exact form open (checked separately).
fn expected_item(v: &Value, f: &Field) -> Option<Av> {
    let u = |i: u32, v: Av| Some(Av::Union(i, Box::new(v)));
    let integer = |p: i32, s: String| u(1, record(&[("precision", int(p)), ("value", string(s))]));
    match v {
        Value::Null => Some(null()),
        Value::Missing | Value::JsonDiff(_) => u(12, Av::Enum(1, "NONE".into())),
        Value::Int(i) => integer(integer_precision(f.type_code)?, i.to_string()),
        Value::UInt(n) => integer(integer_precision(f.type_code)?, n.to_string()),
        Value::Bit(_) | Value::Float(_) | Value::Double(_) | Value::Decimal(_) => None,
        Value::Timestamp {
            seconds, micros, ..
        } => u(
            5,
            record(&[
                ("timestamp", Av::Long(*seconds)),
                ("millis", int(i32::try_from(*micros).ok()?)),
            ]),
        ),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            ..
        } => Some(datetime([
            Some((*year).into()),
            Some((*month).into()),
            Some((*day).into()),
            Some((*hour).into()),
            Some((*minute).into()),
            Some((*second).into()),
            Some((*micros).into()),
        ])),
        Value::Date { year, month, day } => Some(datetime([
            Some((*year).into()),
            Some((*month).into()),
            Some((*day).into()),
            None,
            None,
            None,
            None,
        ])),
        Value::Time {
            negative,
            hour,
            minute,
            second,
            micros,
            ..
        } => {
            let s = if *negative { -1 } else { 1 };
            Some(datetime([
                None,
                None,
                None,
                Some(s * i64::from(*hour)),
                Some(s * i64::from(*minute)),
                Some(s * i64::from(*second)),
                Some(s * i64::from(*micros)),
            ]))
        }
        Value::Year(y) => Some(datetime([
            Some((*y).into()),
            None,
            None,
            None,
            None,
            None,
            None,
        ])),
        Value::Bytes(b) => match f.kind {
            ColumnKind::String => {
                let cs = match f.charset {
                    Some("utf8mb3") => "utf8",
                    Some(cs) => cs,
                    // Unknown charset (names_missing binlogs): the encoder writes "binary".
                    None => "binary",
                };
                u(
                    2,
                    record(&[("charset", string(cs)), ("value", Av::Bytes(b.to_vec()))]),
                )
            }
            ColumnKind::Binary => u(
                2,
                record(&[
                    ("charset", string("binary")),
                    ("value", Av::Bytes(b.to_vec())),
                ]),
            ),
            // VECTOR is not in the spec's table: raw float32 bytes as a BLOB.
            ColumnKind::Blob | ColumnKind::Vector => u(
                10,
                record(&[("type", string("BLOB")), ("value", Av::Bytes(b.to_vec()))]),
            ),
            ColumnKind::Text => u(
                10,
                record(&[("type", string("TEXT")), ("value", Av::Bytes(b.to_vec()))]),
            ),
            ColumnKind::Json => u(
                11,
                record(&[
                    ("type", string("JSON")),
                    ("value", string(std::str::from_utf8(b).ok()?)),
                ]),
            ),
            _ => None,
        },
        Value::Enum { label: Some(l), .. } => u(
            11,
            record(&[
                ("type", string("ENUM")),
                ("value", string(std::str::from_utf8(l).ok()?)),
            ]),
        ),
        Value::Set {
            labels: Some(l), ..
        } => u(
            11,
            record(&[
                ("type", string("SET")),
                ("value", string(std::str::from_utf8(l).ok()?)),
            ]),
        ),
        Value::Enum { index, label: None } => u(
            11,
            record(&[
                ("type", string("ENUM")),
                ("value", string(index.to_string())),
            ]),
        ),
        Value::Set { bits, labels: None } => u(
            11,
            record(&[("type", string("SET")), ("value", string(bits.to_string()))]),
        ),
        Value::Json(s) => u(
            11,
            record(&[("type", string("JSON")), ("value", string(s.clone()))]),
        ),
        Value::Geometry { wkb, .. } => u(
            8,
            record(&[("type", string("WKB")), ("value", Av::Bytes(wkb.clone()))]),
        ),
    }
}

/// Checks one image value against the spec; pushes failures.
fn check_item(f: &mut Failures, at: &str, v: &Value, col: &Field, got: &Av) {
    if let Some(want) = expected_item(v, col) {
        if let Some(why) = diff(got, &want, at) {
            f.add(format!(
                "{why} (value {v:?}, column {} {})",
                col.name, col.type_name
            ));
        }
        return;
    }
    let Av::Union(branch, inner) = got else {
        f.add(format!("{at}: not a union: {got:?}"));
        return;
    };
    match v {
        Value::Bit(b) => {
            f.check(*branch == 1, || {
                format!("{at}: BIT in branch {branch}, want Integer (1)")
            });
            f.check(*field(inner, "value") == string(b.to_string()), || {
                format!("{at}: BIT value {inner:?}, want {b}")
            });
        }
        Value::Decimal(d) => {
            let s = d.to_string();
            // The plain string at the column's scale.
            f.check(
                s.split_once('.').map_or(0, |(_, frac)| frac.len()) == usize::from(d.scale()),
                || format!("{at}: DECIMAL {s} not at the column's scale {}", d.scale()),
            );
            f.check(*branch == 3, || {
                format!("{at}: DECIMAL in branch {branch}, want Decimal (3)")
            });
            f.check(*field(inner, "value") == string(s.clone()), || {
                format!("{at}: DECIMAL value {inner:?}, want {s}")
            });
            f.check(!s.contains(['e', 'E']), || {
                format!("{at}: DECIMAL {s} in exponent form")
            });
            let scale = s.split_once('.').map_or(0, |(_, frac)| frac.len());
            let scale = i32::try_from(scale).expect("scale");
            f.check(*field(inner, "scale") == int(scale), || {
                format!("{at}: DECIMAL {s} scale {inner:?}, want {scale}")
            });
        }
        Value::Float(x) => {
            f.check(*branch == 4, || {
                format!("{at}: FLOAT in branch {branch}, want Float (4)")
            });
            match field(inner, "value") {
                // The double must read back as the very f32 the column holds.
                Av::Double(d) => f.check(*d as f32 == *x || (d.is_nan() && x.is_nan()), || {
                    format!("{at}: FLOAT {x:?} written as {d:?}")
                }),
                other => f.add(format!("{at}: FLOAT value {other:?}")),
            }
        }
        Value::Double(x) => {
            f.check(*branch == 4, || {
                format!("{at}: DOUBLE in branch {branch}, want Float (4)")
            });
            f.check(
                matches!(field(inner, "value"), Av::Double(d) if d.to_bits() == x.to_bits()),
                || format!("{at}: DOUBLE {x:?} written as {inner:?}"),
            );
        }
        Value::Int(_) | Value::UInt(_) => {
            // An integer value in a column whose type code is not an integer type.
            f.add(format!(
                "{at}: integer {v:?} in column {} of type code {}",
                col.name, col.type_code
            ));
        }
        _ => {
            // Text that is not UTF-8 in its charset: only the branch and `type` are fixed.
            let want_branch = match (v, col.kind) {
                (Value::Bytes(_), ColumnKind::Json)
                | (Value::Enum { .. } | Value::Set { .. }, _) => 11,
                (Value::Bytes(_), _) => 2,
                _ => u32::MAX,
            };
            f.check(*branch == want_branch, || {
                format!("{at}: {v:?} ({:?}) in branch {branch}", col.kind)
            });
        }
    }
    if let (10 | 11, Av::Record(_)) = (*branch, inner.as_ref()) {
        let t = field(inner, "type");
        f.check(
            matches!(t, Av::String(s) if OBJECT_TYPES.contains(&s.as_str())),
            || format!("{at}: object type {t:?}"),
        );
    }
}

#[test]
fn spec_semantics_on_corpus() {
    let symbols = operation_symbols();
    let mut f = Failures::default();
    let mut checked = 0usize;
    let mut values = 0usize;
    for d in corpus() {
        let mut in_txn = false;
        for (i, rec) in d.records.iter().enumerate() {
            checked += 1;
            let at = ctx(d, i, rec);
            let v = match decode_with_apache_avro(&to_avro(rec)) {
                Ok(v) => v,
                Err(e) => {
                    f.add(format!("{at}: {e}"));
                    continue;
                }
            };
            let eq = |f: &mut Failures, name: &str, want: Av| {
                if let Some(why) = diff(field(&v, name), &want, name) {
                    f.add(format!("{at}: {why}"));
                }
            };
            eq(&mut f, "version", int(0));
            eq(&mut f, "id", Av::Long(i64::try_from(rec.seq).expect("seq")));
            eq(&mut f, "sourceTimestamp", Av::Long(rec.timestamp.into()));
            eq(&mut f, "bornTimestamp", Av::Long(rec.timestamp.into()));
            eq(
                &mut f,
                "sourcePosition",
                string(format!(
                    "{}@{}",
                    rec.checkpoint.offset, rec.checkpoint.file_index
                )),
            );
            eq(
                &mut f,
                "safeSourcePosition",
                string(rec.safe_checkpoint.to_string()),
            );
            let txid = match (&rec.gtid, rec.xid) {
                (Some(g), _) => g.to_string(),
                (None, Some(x)) => x.to_string(),
                (None, None) => "0".to_owned(),
            };
            eq(&mut f, "sourceTxid", string(txid));
            eq(
                &mut f,
                "source",
                Av::Record(vec![
                    ("sourceType".into(), Av::Enum(0, "MySQL".into())),
                    ("version".into(), string(rec.server_version.to_string())),
                ]),
            );
            let ordinal = symbols
                .iter()
                .position(|s| s == rec.op.as_str())
                .expect("op in schema");
            eq(
                &mut f,
                "operation",
                Av::Enum(
                    u32::try_from(ordinal).expect("ordinal"),
                    rec.op.as_str().into(),
                ),
            );
            let object = match rec.op {
                Op::Insert | Op::Update | Op::Delete => {
                    let t = rec.table.as_deref().expect("row change has a table");
                    Av::Union(
                        1,
                        Box::new(string(format!("{}.{}", esc(&t.database), esc(&t.table)))),
                    )
                }
                Op::Ddl => {
                    let stmt = rec.ddl.as_ref().map_or("", |d| d.statement.as_str());
                    changetrack::filter::ddl_object(stmt)
                        .0
                        .or_else(|| rec.database_name().map(str::to_owned))
                        .map_or_else(null, |db| Av::Union(1, Box::new(string(esc(&db)))))
                }
                Op::Begin | Op::Commit | Op::Heartbeat => null(),
            };
            eq(&mut f, "objectName", object);
            eq(&mut f, "processTimestamps", null());

            // Tags.
            match field(&v, "tags") {
                Av::Map(m) => {
                    let tag = |k: &str| match m.get(k) {
                        Some(Av::String(s)) => Some(s.as_str()),
                        _ => None,
                    };
                    let server_id = rec.server_id.to_string();
                    f.check(tag("server_id") == Some(&server_id), || {
                        format!("{at}: tags.server_id {m:?}")
                    });
                    f.check(tag("metaVersion").is_some(), || {
                        format!("{at}: tags.metaVersion missing")
                    });
                    let th = rec.thread_id.map(|t| t.to_string());
                    f.check(tag("thread_id") == th.as_deref(), || {
                        format!("{at}: tags.thread_id {m:?}, want {th:?}")
                    });
                    f.check(tag("GTID") == rec.gtid.as_deref(), || {
                        format!("{at}: tags.GTID {m:?}")
                    });
                    if rec.op.is_dml() {
                        let pk = rec.primary_key_names();
                        let want = if pk.is_empty() {
                            serde_json::json!({})
                        } else {
                            serde_json::json!({ "PRIMARY": pk })
                        };
                        let got: Option<serde_json::Value> =
                            tag("pk_uk_info").and_then(|s| serde_json::from_str(s).ok());
                        f.check(got.as_ref() == Some(&want), || {
                            format!("{at}: tags.pk_uk_info {got:?}, want {want}")
                        });
                    }
                }
                other => f.add(format!("{at}: tags {other:?}")),
            }

            // Fields and images.
            let fields = rec.fields();
            let field_list = Av::Union(
                2,
                Box::new(Av::Array(
                    fields
                        .iter()
                        .map(|c| {
                            record(&[
                                ("name", string(c.name.clone())),
                                ("dataTypeNumber", int(c.type_code.into())),
                            ])
                        })
                        .collect(),
                )),
            );
            let dml = rec.op.is_dml();
            eq(&mut f, "fields", if dml { field_list } else { null() });
            let has_before = matches!(rec.op, Op::Update | Op::Delete);
            let has_after = matches!(rec.op, Op::Insert | Op::Update);
            for (name, want, image) in [
                ("beforeImages", has_before, rec.before.as_ref()),
                ("afterImages", has_after, rec.after.as_ref()),
            ] {
                let got = field(&v, name);
                match (rec.op, got) {
                    (Op::Ddl, _) if name == "afterImages" => {
                        let stmt = rec
                            .ddl
                            .as_ref()
                            .map(|d| d.statement.clone())
                            .unwrap_or_default();
                        let ok = matches!(got, Av::Union(1, s) if **s == string(stmt.clone()));
                        f.check(ok && rec.ddl.is_some(), || {
                            format!("{at}: DDL afterImages {got:?}, want the SQL text")
                        });
                    }
                    (_, Av::Union(2, items)) if want => {
                        let (Av::Array(items), Some(image)) = (items.as_ref(), image) else {
                            f.add(format!("{at}: {name} {got:?} / {image:?}"));
                            continue;
                        };
                        f.check(
                            items.len() == fields.len() && image.len() == fields.len(),
                            || {
                                format!(
                                    "{at}: {name} has {} values, record {} values, {} fields",
                                    items.len(),
                                    image.len(),
                                    fields.len()
                                )
                            },
                        );
                        for (k, ((val, col), item)) in
                            image.iter().zip(fields).zip(items).enumerate()
                        {
                            values += 1;
                            check_item(&mut f, &format!("{at}: {name}[{k}]"), val, col, item);
                        }
                    }
                    (_, Av::Union(0, n)) if !want && **n == Av::Null => {}
                    _ => f.add(format!("{at}: {name} is {got:?} for {}", rec.op)),
                }
            }

            // Positions: safe <= position, and equal for DDL outside a transaction.
            let cp: Option<Checkpoint> = match field(&v, "sourcePosition") {
                Av::String(s) => s.parse().ok(),
                _ => None,
            };
            f.check(cp == Some(rec.checkpoint), || {
                format!("{at}: sourcePosition does not parse back")
            });
            f.check(
                rec.safe_checkpoint.file_index < rec.checkpoint.file_index
                    || rec.safe_checkpoint <= rec.checkpoint,
                || {
                    format!(
                        "{at}: safeSourcePosition {} after sourcePosition {}",
                        rec.safe_checkpoint, rec.checkpoint
                    )
                },
            );
            match rec.op {
                Op::Begin => in_txn = true,
                Op::Commit => in_txn = false,
                Op::Ddl if !in_txn => f.check(rec.safe_checkpoint == rec.checkpoint, || {
                    format!(
                        "{at}: DDL safeSourcePosition {} != sourcePosition {}",
                        rec.safe_checkpoint, rec.checkpoint
                    )
                }),
                _ => {}
            }
        }
    }
    eprintln!("spec_semantics_on_corpus: {checked} records, {values} image values checked");
    assert!(checked > 1000, "only {checked} records checked");
    f.finish("DTS-AVRO.md semantics");
}

/// `dataTypeNumber` per MySQL type, as the table in DTS-AVRO.md gives it.
#[test]
fn spec_data_type_numbers() {
    let mut f = Failures::default();
    let mut seen = BTreeMap::<(String, u8), usize>::new();
    let mut columns = 0usize;
    for d in corpus() {
        for rec in d.records.iter().filter(|r| r.op.is_dml()) {
            let Ok(v) = decode_with_apache_avro(&to_avro(rec)) else {
                continue;
            };
            let Av::Union(2, list) = field(&v, "fields") else {
                continue;
            };
            let Av::Array(list) = list.as_ref() else {
                continue;
            };
            for (col, item) in rec.fields().iter().zip(list) {
                columns += 1;
                let Av::Int(n) = field(item, "dataTypeNumber") else {
                    continue;
                };
                let allowed: &[i32] = match col.kind {
                    ColumnKind::Integer => &[1, 2, 9, 3, 8],
                    ColumnKind::Bit => &[16],
                    ColumnKind::Decimal => &[246, 0],
                    ColumnKind::Float => &[4, 5],
                    ColumnKind::Timestamp => &[7],
                    ColumnKind::DateTime => &[12],
                    ColumnKind::Date => &[10],
                    ColumnKind::Time => &[11],
                    ColumnKind::Year => &[13],
                    ColumnKind::String | ColumnKind::Binary => &[254, 253],
                    ColumnKind::Blob | ColumnKind::Text => &[249, 250, 251, 252],
                    ColumnKind::Enum => &[247],
                    ColumnKind::Set => &[248],
                    ColumnKind::Json => &[245, 249, 250, 251, 252],
                    ColumnKind::Geometry => &[255],
                    // Not in the spec's table.
                    ColumnKind::Vector | ColumnKind::Null => continue,
                };
                if !allowed.contains(n) {
                    let e = seen
                        .entry((format!("{:?} {}", col.kind, col.type_name), col.type_code))
                        .or_default();
                    if *e == 0 {
                        f.add(format!(
                            "{}: {} column {} ({}) has dataTypeNumber {n}, DTS-AVRO.md says {allowed:?}",
                            rel(&d.path),
                            rec.table_name().unwrap_or_default(),
                            col.name,
                            col.type_name
                        ));
                    } else {
                        f.total += 1;
                    }
                    *e += 1;
                }
            }
        }
    }
    eprintln!("spec_data_type_numbers: {columns} columns checked; mismatches by kind: {seen:?}");
    assert!(columns > 1000, "only {columns} columns checked");
    f.finish("dataTypeNumber vs DTS-AVRO.md (first mismatch per column type shown)");
}

/// A second, independent reader: fastavro, checked against the JSON-lines output.
#[test]
fn fastavro_cross_check() {
    let has_fastavro = Command::new("python3")
        .args(["-c", "import fastavro"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fastavro {
        eprintln!("skipped: python3 with fastavro is not available");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/avro_fastavro.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("CHANGETRACK_BIN", env!("CARGO_BIN_EXE_changetrack"))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        out.status
    );
}
