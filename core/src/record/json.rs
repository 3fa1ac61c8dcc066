//! The JSON-lines form of a record: a stable contract for scripts.
//!
//! One object per record with keys `checkpoint`, `safe_checkpoint`, `timestamp`, `op`,
//! `database`, `table`, `primary_key`, `fields`, `before`, `after`, and, when they apply,
//! `seq`, `ddl`, `session`, `gtid`, `xid`, `server_id`, `thread_id`, `names_missing`,
//! `partial_image`. Values: integers, BIT and YEAR as numbers; DECIMAL as an exact string;
//! FLOAT/DOUBLE as numbers; character data as UTF-8 strings; binary data and geometry (WKB) as
//! base64; temporal types as `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.ffffff]`, `[-]HH:MM:SS[.ffffff]`
//! (TIMESTAMP in UTC); NULL as null. A column absent from a partial row image is absent from
//! the object. Character data that is not valid in its charset (or whose charset is unknown and
//! not plain ASCII) is written as `{"charset": ..., "base64": ...}`, never guessed.

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;

use crate::record::charset;
use crate::record::{ChangeRecord, ColumnKind, Field, Value};

/// Appends `s` as a JSON string.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 bytes at a time while none needs escaping (no '"', '\\', or control byte).
        if let Some(chunk) = bytes.get(i..i + 8) {
            let w = u64::from_le_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            if !needs_escape_word(w) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        i += 1;
        start = i;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Whether any byte of `w` is a control byte (< 0x20), '"' or '\\' (SWAR).
#[inline]
fn needs_escape_word(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // Bytes < 0x20: subtracting 0x20 borrows into the high bit (ASCII bytes only; bytes >= 0x80
    // are excluded by `!w`).
    let lt = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    lt | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\'))) != 0
}

/// JSON fragments of a table, rendered once: `"database":..,"table":..,"primary_key":[..],
/// "fields":[..]` and the `"name":` key of each column.
#[derive(Clone, Debug, Default)]
pub(crate) struct TableJson(OnceLock<(String, Vec<String>)>);

impl PartialEq for TableJson {
    fn eq(&self, _: &Self) -> bool {
        // A cache: never part of a table's identity.
        true
    }
}

fn table_fragments(t: &crate::record::TableInfo) -> &(String, Vec<String>) {
    t.json.0.get_or_init(|| {
        let mut head = String::from(",\"database\":");
        push_str(&mut head, &t.database);
        head.push_str(",\"table\":");
        push_str(&mut head, &t.table);
        head.push_str(",\"primary_key\":[");
        for (i, &k) in t.primary_key.iter().enumerate() {
            if i > 0 {
                head.push(',');
            }
            push_opt_str(&mut head, t.fields.get(k).map(|f| f.name.as_str()));
        }
        head.push_str("],\"fields\":[");
        for (i, f) in t.fields.iter().enumerate() {
            if i > 0 {
                head.push(',');
            }
            head.push_str("{\"name\":");
            push_str(&mut head, &f.name);
            head.push_str(",\"type\":");
            push_int(&mut head, f.type_code);
            head.push_str(",\"charset\":");
            push_opt_str(&mut head, f.charset);
            head.push('}');
        }
        head.push(']');
        let keys = t
            .fields
            .iter()
            .map(|f| {
                let mut k = String::new();
                push_str(&mut k, &f.name);
                k.push(':');
                k
            })
            .collect();
        (head, keys)
    })
}

/// Appends an integer in decimal.
pub(crate) fn push_int(out: &mut String, v: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.push_str(b.format(v));
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `v` (< 100) as two digits.
fn push_2(out: &mut String, v: u64) {
    let i = (v % 100) as usize * 2;
    out.push(char::from(DIGIT_PAIRS[i]));
    out.push(char::from(DIGIT_PAIRS[i + 1]));
}

/// Appends `v` zero-padded to at least `width` digits.
fn push_padded(out: &mut String, v: u64, width: usize) {
    match width {
        2 if v < 100 => push_2(out, v),
        4 if v < 10_000 => {
            push_2(out, v / 100);
            push_2(out, v % 100);
        }
        _ => {
            let mut b = itoa::Buffer::new();
            let s = b.format(v);
            for _ in s.len()..width {
                out.push('0');
            }
            out.push_str(s);
        }
    }
}

fn push_checkpoint(out: &mut String, cp: crate::record::Checkpoint) {
    out.push('"');
    push_int(out, cp.offset);
    out.push('@');
    push_int(out, cp.file_index);
    out.push('"');
}

fn push_date(out: &mut String, year: u64, month: u64, day: u64) {
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, month, 2);
    out.push('-');
    push_padded(out, day, 2);
}

fn push_hms(out: &mut String, hour: u64, minute: u64, second: u64) {
    push_padded(out, hour, 2);
    out.push(':');
    push_padded(out, minute, 2);
    out.push(':');
    push_padded(out, second, 2);
}

fn push_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

fn push_base64(out: &mut String, b: &[u8]) {
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(b, out);
    out.push('"');
}

fn push_text(out: &mut String, bytes: &[u8], charset: Option<&str>) {
    match charset::decode(bytes, charset) {
        Some(s) => push_str(out, &s),
        None => {
            out.push_str("{\"charset\":");
            push_opt_str(out, charset);
            out.push_str(",\"base64\":");
            push_base64(out, bytes);
            out.push('}');
        }
    }
}

fn push_frac(out: &mut String, micros: u32, fsp: u8) {
    if fsp > 0 {
        let fsp = u32::from(fsp.min(6));
        out.push('.');
        push_padded(out, u64::from(micros / 10u32.pow(6 - fsp)), fsp as usize);
    }
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// UTC calendar parts of an epoch-seconds value.
pub(crate) fn utc_parts(seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, (secs / 60) % 60, secs % 60)
}

/// Appends the JSON form of one value of `field`.
pub fn push_value(out: &mut String, v: &Value, field: &Field) {
    match v {
        Value::Null | Value::Missing => out.push_str("null"),
        Value::Int(i) => push_int(out, *i),
        Value::UInt(u) | Value::Bit(u) => push_int(out, *u),
        Value::Year(y) => push_int(out, *y),
        Value::Float(f) => push_float(out, f64::from(*f), Some(*f)),
        Value::Double(d) => push_float(out, *d, None),
        Value::Decimal(d) => {
            out.push('"');
            d.write_to(out);
            out.push('"');
        }
        Value::Json(s) => push_str(out, s),
        Value::Date { year, month, day } => {
            out.push('"');
            push_date(out, u64::from(*year), u64::from(*month), u64::from(*day));
            out.push('"');
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
            out.push('"');
            push_date(out, u64::from(*year), u64::from(*month), u64::from(*day));
            out.push(' ');
            push_hms(
                out,
                u64::from(*hour),
                u64::from(*minute),
                u64::from(*second),
            );
            push_frac(out, *micros, *fsp);
            out.push('"');
        }
        Value::Time {
            negative,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => {
            out.push('"');
            if *negative {
                out.push('-');
            }
            push_hms(
                out,
                u64::from(*hour),
                u64::from(*minute),
                u64::from(*second),
            );
            push_frac(out, *micros, *fsp);
            out.push('"');
        }
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => {
            out.push('"');
            if *seconds == 0 && *micros == 0 {
                out.push_str("0000-00-00 00:00:00");
            } else {
                let (y, mo, d, h, mi, s) = utc_parts(*seconds);
                push_date(out, y.unsigned_abs(), u64::from(mo), u64::from(d));
                out.push(' ');
                push_hms(out, u64::from(h), u64::from(mi), u64::from(s));
            }
            push_frac(out, *micros, *fsp);
            out.push('"');
        }
        Value::Bytes(b) => match field.kind {
            ColumnKind::String | ColumnKind::Text | ColumnKind::Json => {
                push_text(out, b, field.charset)
            }
            _ => push_base64(out, b),
        },
        Value::Enum { index, label } => match label {
            Some(l) => push_text(out, l, field.charset),
            None => push_int(out, *index),
        },
        Value::Set { bits, labels } => match labels {
            Some(l) => push_text(out, l, field.charset),
            None => push_int(out, *bits),
        },
        Value::Geometry { wkb, .. } => push_base64(out, wkb),
        Value::JsonDiff(d) => {
            out.push_str("{\"json_diff\":");
            out.push_str(d);
            out.push('}');
        }
    }
}

fn push_float(out: &mut String, d: f64, single: Option<f32>) {
    if !d.is_finite() {
        out.push_str("null");
        return;
    }
    // Shortest text that reads back as the stored value (FLOAT: as the f32 it is).
    let _ = match single {
        Some(f) => write!(out, "{f:?}"),
        None => write!(out, "{d:?}"),
    };
}

fn push_image(out: &mut String, values: Option<&Vec<Value>>, fields: &[Field], keys: &[String]) {
    let Some(values) = values else {
        out.push_str("null");
        return;
    };
    out.push('{');
    let mut first = true;
    for ((v, f), key) in values.iter().zip(fields).zip(keys) {
        if matches!(v, Value::Missing) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(key);
        push_value(out, v, f);
    }
    out.push('}');
}

/// Appends the human-readable line of `rec` (`decode --format text`), newline included:
/// checkpoint, timestamp, op (padded to 6), `db.table`, the DDL statement on one line, and for
/// row changes `before=` and `after=` with the images as [`push_record`] writes them.
pub fn push_text_line(out: &mut String, rec: &ChangeRecord) {
    push_int(out, rec.checkpoint.offset);
    out.push('@');
    push_int(out, rec.checkpoint.file_index);
    out.push(' ');
    push_int(out, rec.timestamp);
    out.push(' ');
    let op = rec.op.as_str();
    out.push_str(op);
    for _ in op.len()..6 {
        out.push(' ');
    }
    if let Some(db) = rec.database_name() {
        out.push(' ');
        out.push_str(db);
        if let Some(t) = rec.table_name() {
            out.push('.');
            out.push_str(t);
        }
    }
    if let Some(ddl) = &rec.ddl {
        out.push(' ');
        for (i, line) in ddl.statement.split('\n').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(line);
        }
    }
    if rec.op.is_dml() {
        out.push_str(" before=");
        push_row_image(out, rec, false);
        out.push_str(" after=");
        push_row_image(out, rec, true);
    }
    out.push('\n');
}

/// Appends `rec`'s before image (`after == false`) or after image as the JSON object that
/// [`push_record`] writes for it (columns in table order; `null` when there is none).
pub fn push_row_image(out: &mut String, rec: &ChangeRecord, after: bool) {
    let image = if after { &rec.after } else { &rec.before };
    match rec.table.as_deref() {
        Some(t) => push_image(out, image.as_ref(), rec.fields(), &table_fragments(t).1),
        None => out.push_str("null"),
    }
}

/// Appends the JSON object of `rec` (no newline). `with_seq` adds the store's `seq` key.
pub fn push_record(out: &mut String, rec: &ChangeRecord, with_seq: bool) {
    out.push('{');
    if with_seq {
        out.push_str("\"seq\":");
        push_int(out, rec.seq);
        out.push(',');
    }
    out.push_str("\"checkpoint\":");
    push_checkpoint(out, rec.checkpoint);
    out.push_str(",\"safe_checkpoint\":");
    push_checkpoint(out, rec.safe_checkpoint);
    out.push_str(",\"timestamp\":");
    push_int(out, rec.timestamp);
    out.push_str(",\"op\":\"");
    out.push_str(rec.op.as_str());
    out.push('"');
    let fields = rec.fields();
    match rec.table.as_deref() {
        Some(t) => {
            let (head, keys) = table_fragments(t);
            out.push_str(head);
            out.push_str(",\"before\":");
            push_image(out, rec.before.as_ref(), fields, keys);
            out.push_str(",\"after\":");
            push_image(out, rec.after.as_ref(), fields, keys);
        }
        None => {
            out.push_str(",\"database\":");
            push_opt_str(out, rec.database_name());
            out.push_str(
                ",\"table\":null,\"primary_key\":[],\"fields\":[],\"before\":null,\"after\":null",
            );
        }
    }
    if let Some(ddl) = &rec.ddl {
        out.push_str(",\"ddl\":");
        push_str(out, &ddl.statement);
        out.push_str(",\"session\":");
        push_str(out, &ddl.session);
    }
    if let Some(g) = &rec.gtid {
        out.push_str(",\"gtid\":");
        push_str(out, g);
    }
    if let Some(x) = rec.xid {
        out.push_str(",\"xid\":");
        push_int(out, x);
    }
    out.push_str(",\"server_id\":");
    push_int(out, rec.server_id);
    if let Some(t) = rec.thread_id {
        out.push_str(",\"thread_id\":");
        push_int(out, t);
    }
    if rec.flags.names_missing {
        out.push_str(",\"names_missing\":true");
    }
    if rec.flags.partial_image {
        out.push_str(",\"partial_image\":true");
    }
    out.push('}');
}

/// The JSON object of `rec` as a string.
#[must_use]
pub fn to_json(rec: &ChangeRecord, with_seq: bool) -> String {
    let mut s = String::with_capacity(512);
    push_record(&mut s, rec, with_seq);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(utc_parts(2_147_483_647), (2038, 1, 19, 3, 14, 7));
        assert_eq!(utc_parts(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn escaping_round_trips_every_position() {
        for c in (0u8..0x80).map(char::from).chain(['é', '杭', '😀']) {
            for pos in 0..20 {
                let mut text: String = "abcdefghijklmnopqrs".chars().take(pos).collect();
                text.push(c);
                text.push_str("tail-of-the-string!");
                let mut out = String::new();
                push_str(&mut out, &text);
                let back: String = serde_json::from_str(&out).unwrap();
                assert_eq!(back, text);
            }
        }
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é");
    }
}
