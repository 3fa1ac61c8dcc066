//! The server's own decoder as an oracle: parses what `mariadb-binlog --base64-output=decode-rows
//! --verbose --verbose` and `mariadb-binlog --print-table-metadata` print for a binlog, and
//! compares every printed row with our decoder's records, column by column (used by
//! `tests/differential.rs` on the corpus and by `tests/column_sweep.rs` on binlogs a private
//! server writes).
//!
//! How `mariadb-binlog` 10.11 prints values (`log_event_print_value`), and how each is compared:
//! * integers: the signed reading, then ` (unsigned reading)` when the signed one is negative;
//!   our value must be the reading its signedness selects;
//! * YEAR: the stored byte plus 1900, so the zero year prints as `1900`;
//! * FLOAT: `%-20g` (6 significant digits), compared numerically within half a unit of the 6th
//!   digit; DOUBLE: `%.20g`, which reads back as exactly the stored double;
//! * DECIMAL: the exact string at the column's scale;
//! * BIT(n): `b'...'` with n digits; SET: its stored little-endian bytes in storage order, 8 digits
//!   each (`b'0000010100000010'` is bits 0x0205); ENUM: the 1-based index;
//! * DATE `'YYYY:MM:DD'` (colons); TIME `'[-]HH:MM:SS[.f]'`; DATETIME `'YYYY-MM-DD HH:MM:SS[.f]'`;
//!   TIMESTAMP as epoch seconds `S[.f]`, with as many fraction digits as the column has;
//! * strings, blobs, geometry (4-byte SRID + WKB): the raw bytes between single quotes, bytes
//!   below 0x20 written `\xNN` and every other byte (quotes and backslashes included) raw; so our
//!   bytes are rendered the same way and compared byte for byte. The server strips BINARY(n)'s
//!   trailing zero bytes when logging; our decoder pads them back to n (as SELECT shows them).
//!
//! XA: a prepared XA transaction's rows are in the binlog between `XA START` and `XA PREPARE`,
//! and its outcome comes later as its own `XA COMMIT` / `XA ROLLBACK` group. Our decoder holds
//! the rows back and emits them at the XA COMMIT (so they are expected at that position, not
//! where `mariadb-binlog` printed them), and drops them on purpose at an XA ROLLBACK, since a
//! consumer must not apply them. The rows of the rolled-back XA transaction (in file 000003 of
//! each variant) are therefore matched as expected-absent: counted, never compared.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, ColumnKind, Field, Op, Value};

/// Mismatch messages kept per file (the rest are counted).
pub const MAX_REPORTED: usize = 40;

pub fn show(b: &[u8]) -> String {
    const LIMIT: usize = 160;
    let s = b.escape_ascii().to_string();
    if s.len() > LIMIT {
        let mut cut = LIMIT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...({} bytes)", &s[..cut], b.len())
    } else {
        s
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

pub fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("<non-UTF-8>")
}

/// `` `db`.`t` `` at the start of `s` (after the prefix is removed).
pub fn backticked_pair(s: &[u8]) -> Option<(String, String)> {
    let parts: Vec<&[u8]> = s.split(|&c| c == b'`').collect();
    // "", db, ".", t, rest
    if parts.len() < 4 || !parts[0].is_empty() || parts[2] != b"." {
        return None;
    }
    Some((
        String::from_utf8_lossy(parts[1]).into_owned(),
        String::from_utf8_lossy(parts[3]).into_owned(),
    ))
}

/// The `end_log_pos` and `` `db`.`t` `` of an event header line announcing a table map.
pub fn table_map_header(line: &[u8]) -> Option<(u64, String, String)> {
    if !line.starts_with(b"#") {
        return None;
    }
    let at = find(line, b"\tTable_map: ")?;
    let names = backticked_pair(&line[at + b"\tTable_map: ".len()..])?;
    let pos_at = find(line, b" end_log_pos ")? + b" end_log_pos ".len();
    let digits: Vec<u8> = line[pos_at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    let pos = text(&digits).parse().ok()?;
    Some((pos, names.0, names.1))
}

/// One column of a table map as `--print-table-metadata` shows it.
#[derive(Clone, Debug)]
pub struct ColumnDef {
    /// The column name (FULL metadata only).
    pub name: Option<String>,
    /// The SQL type text (`TINYINT UNSIGNED`, `BINARY(16)`, ...).
    pub sql: String,
    pub unsigned: bool,
    pub binary_fixed: bool,
}

#[derive(Debug)]
pub struct TableMapDef {
    pub end_log_pos: u64,
    pub db: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
}

pub fn parse_column_def(s: &[u8]) -> ColumnDef {
    let (name, rest) = if s.first() == Some(&b'`') {
        let end = s[1..]
            .iter()
            .position(|&c| c == b'`')
            .map_or(s.len(), |p| p + 1);
        (
            Some(String::from_utf8_lossy(&s[1..end]).into_owned()),
            s.get(end + 1..).unwrap_or_default(),
        )
    } else {
        (None, s)
    };
    let sql = String::from_utf8_lossy(rest).trim().to_string();
    ColumnDef {
        name,
        unsigned: sql.contains(" UNSIGNED"),
        binary_fixed: sql.starts_with("BINARY("),
        sql,
    }
}

/// Parses `*.table-metadata.txt`: each table map's header line, then `# Columns(` with one
/// column per line, each ending in `,` except the last, which ends in `)`.
pub fn parse_table_metadata(data: &[u8]) -> Vec<TableMapDef> {
    let mut out: Vec<TableMapDef> = Vec::new();
    let mut in_columns = false;
    for line in data.split(|&c| c == b'\n') {
        if let Some((end_log_pos, db, table)) = table_map_header(line) {
            out.push(TableMapDef {
                end_log_pos,
                db,
                table,
                columns: Vec::new(),
            });
            in_columns = false;
            continue;
        }
        let col = if let Some(rest) = line.strip_prefix(b"# Columns(") {
            in_columns = true;
            rest
        } else if in_columns && line.starts_with(b"#         ") {
            &line[b"#         ".len()..]
        } else {
            in_columns = false;
            continue;
        };
        let (body, last) = match col.last() {
            Some(b',') => (&col[..col.len() - 1], false),
            Some(b')') => (&col[..col.len() - 1], true),
            _ => panic!("unexpected column line in table metadata: {}", show(line)),
        };
        let map = out.last_mut().expect("Columns( before any table map");
        // Types it cannot name (the old TIME/DATETIME/TIMESTAMP) print as `INVALID_TYPE(n)`
        // with no separator before the next column.
        let mut body = body;
        while let Some(at) = find(body, b"INVALID_TYPE(") {
            let close = at
                + body[at..]
                    .iter()
                    .position(|&c| c == b')')
                    .expect("INVALID_TYPE(");
            if close + 1 == body.len() {
                break;
            }
            map.columns.push(parse_column_def(&body[..=close]));
            body = &body[close + 1..];
        }
        map.columns.push(parse_column_def(body));
        if last {
            in_columns = false;
        }
    }
    out
}

/// One printed column value: `###   @N=VALUE /* TYPE meta=M nullable=X is_null=Y */`.
#[derive(Debug)]
pub struct OracleCol {
    /// 1-based column number.
    pub n: usize,
    pub value: Vec<u8>,
    pub ty: String,
    pub is_null: bool,
}

#[derive(Debug)]
pub struct OracleRow {
    pub op: Op,
    pub db: String,
    pub table: String,
    pub before: Option<Vec<OracleCol>>,
    pub after: Option<Vec<OracleCol>>,
    /// 1-based line of the row's `### INSERT/UPDATE/DELETE` header in decoded.txt.
    pub line: usize,
    /// Index into the table-metadata table maps.
    pub map: usize,
}

pub fn parse_col(line: &[u8], lineno: usize) -> OracleCol {
    let bad = |why: &str| -> ! { panic!("decoded.txt line {lineno}: {why}: {}", show(line)) };
    let rest = line
        .strip_prefix(b"###   @")
        .unwrap_or_else(|| bad("not a column line"));
    let eq = rest
        .iter()
        .position(|&c| c == b'=')
        .unwrap_or_else(|| bad("no '='"));
    let n: usize = text(&rest[..eq])
        .parse()
        .unwrap_or_else(|_| bad("bad column number"));
    let rest = &rest[eq + 1..];
    let c = rfind(rest, b" /* ").unwrap_or_else(|| bad("no type comment"));
    let mut value = rest[..c].to_vec();
    if value.first() != Some(&b'\'') {
        // FLOAT is printed `%-20g`: drop the padding of unquoted values.
        while value.last() == Some(&b' ') {
            value.pop();
        }
    }
    let comment = rest[c + 4..]
        .strip_suffix(b" */")
        .unwrap_or_else(|| bad("comment not closed"));
    let comment = text(comment);
    let m = comment.find(" meta=").unwrap_or_else(|| bad("no meta="));
    let ty = comment[..m].to_string();
    let is_null = if comment.ends_with(" is_null=1") {
        true
    } else if comment.ends_with(" is_null=0") {
        false
    } else {
        bad("no is_null")
    };
    OracleCol {
        n,
        value,
        ty,
        is_null,
    }
}

#[derive(Default, Debug)]
pub struct Oracle {
    /// Rows our decoder must produce, in the order it must produce them.
    pub expected: Vec<OracleRow>,
    /// Rows of XA transactions that were rolled back after XA PREPARE: printed, but not to be
    /// produced.
    pub absent: Vec<OracleRow>,
    /// `### INSERT/UPDATE/DELETE` headers in the file.
    pub headers: usize,
}

/// The XID text after `XA <VERB> ` up to the end of the statement.
pub fn xa_xid(line: &[u8], verb: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(verb)?;
    let end = find(rest, b"/*").unwrap_or(rest.len());
    Some(
        text(&rest[..end])
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_string(),
    )
}

pub fn parse_decoded(data: &[u8], maps: &[TableMapDef]) -> Oracle {
    let mut oracle = Oracle::default();
    let mut cur: Option<OracleRow> = None;
    // Which image `###   @N` lines go to: false = before (WHERE), true = after (SET).
    let mut to_after = false;
    let mut next_map = 0usize;
    let mut current_map: HashMap<(String, String), usize> = HashMap::new();
    // The XA transaction being logged (between XA START and XA PREPARE), and the rows of
    // prepared XA transactions waiting for their XA COMMIT / XA ROLLBACK.
    let mut xa_open: Option<String> = None;
    let mut xa_pending: HashMap<String, Vec<OracleRow>> = HashMap::new();

    let finish = |cur: &mut Option<OracleRow>,
                  oracle: &mut Oracle,
                  xa_open: &Option<String>,
                  xa_pending: &mut HashMap<String, Vec<OracleRow>>| {
        if let Some(row) = cur.take() {
            match xa_open {
                Some(x) => xa_pending.entry(x.clone()).or_default().push(row),
                None => oracle.expected.push(row),
            }
        }
    };

    for (i, line) in data.split(|&c| c == b'\n').enumerate() {
        let lineno = i + 1;
        if !line.starts_with(b"###") {
            finish(&mut cur, &mut oracle, &xa_open, &mut xa_pending);
        }
        if let Some((pos, db, table)) = table_map_header(line) {
            let m = maps
                .get(next_map)
                .unwrap_or_else(|| panic!("line {lineno}: more table maps than in table-metadata"));
            assert_eq!(
                (m.end_log_pos, &m.db, &m.table),
                (pos, &db, &table),
                "line {lineno}: table map {next_map} differs from table-metadata's"
            );
            current_map.insert((db, table), next_map);
            next_map += 1;
            continue;
        }
        if let Some(x) = xa_xid(line, b"XA START ") {
            assert!(xa_open.is_none(), "line {lineno}: nested XA START");
            xa_open = Some(x);
            continue;
        }
        if let Some(x) = xa_xid(line, b"XA PREPARE ") {
            assert_eq!(
                xa_open.as_deref(),
                Some(x.as_str()),
                "line {lineno}: XA PREPARE"
            );
            xa_open = None;
            continue;
        }
        if let Some(x) = xa_xid(line, b"XA COMMIT ") {
            let rows = xa_pending.remove(&x).unwrap_or_default();
            // Our decoder emits a prepared XA transaction's rows when its XA COMMIT is read.
            oracle.expected.extend(rows);
            continue;
        }
        if let Some(x) = xa_xid(line, b"XA ROLLBACK ") {
            // Rolled back after XA PREPARE: our decoder drops these rows on purpose.
            let rows = xa_pending.remove(&x).unwrap_or_default();
            oracle.absent.extend(rows);
            continue;
        }
        let header = [
            (&b"### INSERT INTO "[..], Op::Insert),
            (&b"### UPDATE "[..], Op::Update),
            (&b"### DELETE FROM "[..], Op::Delete),
        ]
        .into_iter()
        .find_map(|(p, op)| line.strip_prefix(p).map(|rest| (op, rest)));
        if let Some((op, rest)) = header {
            finish(&mut cur, &mut oracle, &xa_open, &mut xa_pending);
            oracle.headers += 1;
            let (db, table) = backticked_pair(rest)
                .unwrap_or_else(|| panic!("line {lineno}: bad row header {}", show(line)));
            let map = *current_map
                .get(&(db.clone(), table.clone()))
                .unwrap_or_else(|| {
                    panic!("line {lineno}: rows of {db}.{table} without a table map")
                });
            cur = Some(OracleRow {
                op,
                db,
                table,
                before: None,
                after: None,
                line: lineno,
                map,
            });
            continue;
        }
        if line == b"### SET" || line == b"### WHERE" {
            let row = cur
                .as_mut()
                .unwrap_or_else(|| panic!("line {lineno}: image outside a row"));
            to_after = line == b"### SET";
            let slot = if to_after {
                &mut row.after
            } else {
                &mut row.before
            };
            assert!(slot.is_none(), "line {lineno}: image printed twice");
            *slot = Some(Vec::new());
            continue;
        }
        if line.starts_with(b"###   @") {
            let col = parse_col(line, lineno);
            let row = cur
                .as_mut()
                .unwrap_or_else(|| panic!("line {lineno}: column outside a row"));
            let image = if to_after {
                &mut row.after
            } else {
                &mut row.before
            };
            image
                .as_mut()
                .unwrap_or_else(|| panic!("line {lineno}: column before SET/WHERE"))
                .push(col);
            continue;
        }
        assert!(
            !line.starts_with(b"###"),
            "line {lineno}: unknown ### line {}",
            show(line)
        );
    }
    finish(&mut cur, &mut oracle, &xa_open, &mut xa_pending);
    assert_eq!(
        next_map,
        maps.len(),
        "table-metadata has table maps decoded.txt lacks"
    );
    assert!(
        xa_open.is_none(),
        "XA transaction not prepared at the end of the file"
    );
    assert!(
        xa_pending.is_empty(),
        "prepared XA transactions without XA COMMIT/ROLLBACK: {:?}",
        xa_pending.keys()
    );
    for row in oracle.expected.iter().chain(&oracle.absent) {
        let (b, a) = (row.before.is_some(), row.after.is_some());
        let ok = match row.op {
            Op::Insert => !b && a,
            Op::Update => b && a,
            _ => b && !a,
        };
        assert!(ok, "line {}: images do not fit {}", row.line, row.op);
    }
    oracle
}

/// `my_b_write_quoted`: bytes below 0x20 as `\xNN`, everything else raw, in single quotes.
pub fn quote(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 2);
    out.push(b'\'');
    for &c in b {
        if c > 0x1f {
            out.push(c);
        } else {
            out.extend_from_slice(format!("\\x{c:02x}").as_bytes());
        }
    }
    out.push(b'\'');
    out
}

/// The digits inside `NAME(n)` / `NAME(n bytes)` of a type annotation.
pub fn type_arg(ty: &str) -> Option<usize> {
    let open = ty.find('(')?;
    let digits: String = ty[open + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub fn frac(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        String::new()
    } else {
        let d = format!("{micros:06}");
        format!(".{}", &d[..usize::from(fsp.min(6))])
    }
}

/// What the test knows about a column besides the printed value.
pub struct ColCtx<'a> {
    pub field: &'a Field,
    pub def: &'a ColumnDef,
    /// The variant carries FULL metadata, so the decoder must know signedness and charsets.
    pub full_metadata: bool,
}

/// Compares one printed value with ours. `Err` describes the mismatch.
pub fn check_value(o: &OracleCol, ours: &Value, cx: &ColCtx<'_>) -> Result<(), String> {
    let printed = o.value.as_slice();
    if o.is_null != (printed == b"NULL") {
        return Err("oracle is_null disagrees with its value".into());
    }
    if o.is_null {
        return match ours {
            Value::Null => Ok(()),
            _ => Err("expected NULL".into()),
        };
    }
    let ty = o.ty.as_str();
    let family = ty.split('(').next().unwrap_or(ty);
    let eq = |want: Vec<u8>| {
        if want == printed {
            Ok(())
        } else {
            Err(format!("ours renders as {}", show(&want)))
        }
    };
    match (family, ours) {
        (
            "TINYINT" | "SHORTINT" | "MEDIUMINT" | "INT" | "LONGINT",
            Value::Int(_) | Value::UInt(_),
        ) => {
            let s = text(printed);
            let (si, ui) = match s.split_once(" (") {
                Some((si, ui)) => (
                    si.parse::<i64>().map_err(|e| format!("oracle: {e}"))?,
                    ui.trim_end_matches(')')
                        .parse::<u64>()
                        .map_err(|e| format!("oracle: {e}"))?,
                ),
                None => {
                    let si = s.parse::<i64>().map_err(|e| format!("oracle: {e}"))?;
                    let ui =
                        u64::try_from(si).map_err(|_| "oracle: negative without (unsigned)")?;
                    (si, ui)
                }
            };
            let want_unsigned = cx.def.unsigned;
            match cx.field.unsigned {
                Some(u) if u != want_unsigned => {
                    return Err(format!("field.unsigned={u}, the column is {}", cx.def.sql))
                }
                None if cx.full_metadata => {
                    return Err("field.unsigned unknown with FULL metadata".into())
                }
                _ => {}
            }
            match (cx.field.unsigned, ours) {
                // Signedness known: the value must be the reading it selects.
                (Some(false), Value::Int(v)) if *v == si => Ok(()),
                (Some(true), Value::UInt(v)) if *v == ui => Ok(()),
                // Signedness unknown (MINIMAL metadata without it): either reading.
                (None, Value::Int(v)) if *v == si => Ok(()),
                (None, Value::UInt(v)) if *v == ui => Ok(()),
                _ => Err(format!("signed reading {si}, unsigned reading {ui}")),
            }
        }
        ("YEAR", Value::Year(y)) => {
            // The stored byte plus 1900: the zero year prints as 1900.
            eq(format!("{}", if *y == 0 { 1900 } else { *y }).into_bytes())
        }
        ("FLOAT", Value::Float(f)) => {
            let p: f64 = text(printed).parse().map_err(|e| format!("oracle: {e}"))?;
            let v = f64::from(*f);
            if !v.is_finite() {
                return Err("non-finite FLOAT".into());
            }
            // %g with 6 significant digits: within half a unit of the 6th digit of the value.
            let mag = v.abs().max(p.abs());
            let tol = if mag == 0.0 {
                0.0
            } else {
                0.5 * 10f64.powi(mag.log10().floor() as i32 - 5) * (1.0 + 1e-9)
            };
            if (p - v).abs() <= tol {
                Ok(())
            } else {
                Err(format!("ours {f:?}, printed {p} (tolerance {tol:e})"))
            }
        }
        ("DOUBLE", Value::Double(d)) => {
            // %.20g has more digits than a double needs: it reads back exactly.
            let p: f64 = text(printed).parse().map_err(|e| format!("oracle: {e}"))?;
            if p.to_bits() == d.to_bits() {
                Ok(())
            } else {
                Err(format!("ours {d:?}, printed {p:?}"))
            }
        }
        ("DECIMAL", Value::Decimal(s)) => eq(s.to_string().into_bytes()),
        ("BIT", Value::Bit(b)) => {
            let n = type_arg(ty).ok_or("no BIT width")?;
            if n < 64 && *b >> n != 0 {
                return Err(format!("{b} does not fit BIT({n})"));
            }
            eq(format!("b'{b:0n$b}'").into_bytes())
        }
        ("SET", Value::Set { bits, .. }) => {
            let n = 8 * type_arg(ty).ok_or("no SET size")?;
            if n < 64 && *bits >> n != 0 {
                return Err(format!("{bits} does not fit {n} bits"));
            }
            // Printed as the stored (little-endian) bytes in storage order, each MSB first.
            let digits: String = bits.to_le_bytes()[..n / 8]
                .iter()
                .map(|b| format!("{b:08b}"))
                .collect();
            eq(format!("b'{digits}'").into_bytes())
        }
        ("ENUM", Value::Enum { index, .. }) => eq(index.to_string().into_bytes()),
        ("DATE", Value::Date { year, month, day }) => {
            eq(format!("'{year:04}:{month:02}:{day:02}'").into_bytes())
        }
        (
            "TIME",
            Value::Time {
                negative,
                hour,
                minute,
                second,
                micros,
                fsp,
            },
        ) => {
            let want_fsp = type_arg(ty).unwrap_or(0);
            if usize::from(*fsp) != want_fsp {
                return Err(format!("fsp {fsp}, column has {want_fsp}"));
            }
            let sign = if *negative { "-" } else { "" };
            eq(format!(
                "'{sign}{hour:02}:{minute:02}:{second:02}{}'",
                frac(*micros, *fsp)
            )
            .into_bytes())
        }
        (
            "DATETIME",
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
                fsp,
            },
        ) => {
            let want_fsp = type_arg(ty).unwrap_or(0);
            if usize::from(*fsp) != want_fsp {
                return Err(format!("fsp {fsp}, column has {want_fsp}"));
            }
            eq(format!(
                "'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{}'",
                frac(*micros, *fsp)
            )
            .into_bytes())
        }
        (
            "TIMESTAMP",
            Value::Timestamp {
                seconds,
                micros,
                fsp,
            },
        ) => {
            let want_fsp = type_arg(ty).unwrap_or(0);
            if usize::from(*fsp) != want_fsp {
                return Err(format!("fsp {fsp}, column has {want_fsp}"));
            }
            eq(format!("{seconds}{}", frac(*micros, *fsp)).into_bytes())
        }
        ("STRING", Value::Bytes(b)) => {
            if !cx.def.binary_fixed {
                return eq(quote(b));
            }
            // BINARY(n): logged without its trailing zero bytes; we pad them back to n.
            let n = type_arg(ty).ok_or("no STRING length")?;
            let unpadded = b.len() < n && quote(b) == printed;
            let mut padded = b.to_vec();
            while padded.last() == Some(&0) {
                padded.pop();
            }
            let padded_ok = b.len() == n && quote(&padded) == printed;
            // Without FULL metadata, a decoder that cannot tell BINARY from CHAR may leave the
            // value as logged; one that says the column is binary must pad it.
            let may_be_unpadded = !cx.full_metadata && cx.field.kind != ColumnKind::Binary;
            if padded_ok || (unpadded && may_be_unpadded) {
                Ok(())
            } else {
                Err(format!(
                    "BINARY({n}): ours is {} bytes, want the printed bytes zero-padded to {n}: {}",
                    b.len(),
                    show(&quote(b))
                ))
            }
        }
        (
            "VARSTRING"
            | "TINYBLOB/TINYTEXT"
            | "BLOB/TEXT"
            | "MEDIUMBLOB/MEDIUMTEXT"
            | "LONGBLOB/LONGTEXT",
            Value::Bytes(b),
        ) => eq(quote(b)),
        ("LONGBLOB/LONGTEXT" | "BLOB/TEXT", Value::Json(s)) => eq(quote(s.as_bytes())),
        ("GEOMETRY", Value::Geometry { srid, wkb }) => {
            let mut raw = srid.to_le_bytes().to_vec();
            raw.extend_from_slice(wkb);
            eq(quote(&raw))
        }
        _ => Err("value kind does not fit the column type".into()),
    }
}

pub fn short_value(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

#[derive(Default)]
pub struct FileResult {
    pub compared_rows: usize,
    pub compared_values: usize,
    pub absent_rows: usize,
    pub headers: usize,
    pub mismatches: Vec<String>,
    pub mismatch_count: usize,
}

impl FileResult {
    fn fail(&mut self, msg: String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < MAX_REPORTED {
            self.mismatches.push(msg);
        }
    }
}

pub fn decode_file(path: &Path) -> Result<Vec<ChangeRecord>, String> {
    let reader = BinlogReader::open(&[path.to_path_buf()], BinlogOptions::default())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in reader {
        let r = r.map_err(|e| e.to_string())?;
        if r.op.is_dml() {
            out.push(r);
        }
    }
    Ok(out)
}

/// One row to compare: the oracle's, ours, and the table map it was logged with.
pub struct RowPair<'a> {
    pub row: &'a OracleRow,
    pub map: &'a TableMapDef,
    pub rec: &'a ChangeRecord,
    pub full_metadata: bool,
}

pub fn compare_image(
    res: &mut FileResult,
    pair: &RowPair<'_>,
    what: &str,
    oracle: Option<&Vec<OracleCol>>,
    ours: Option<&Vec<Value>>,
) {
    let RowPair {
        row,
        map,
        rec,
        full_metadata,
    } = *pair;
    let ctx = format!(
        "line {} {}.{} {} {what}",
        row.line, row.db, row.table, row.op
    );
    let (Some(oracle), Some(ours)) = (oracle, ours) else {
        if oracle.is_some() != ours.is_some() {
            res.fail(format!("{ctx}: image present in one side only"));
        }
        return;
    };
    let fields = rec.fields();
    if ours.len() != map.columns.len() || fields.len() != map.columns.len() {
        res.fail(format!(
            "{ctx}: {} values / {} fields, the table map has {} columns",
            ours.len(),
            fields.len(),
            map.columns.len()
        ));
        return;
    }
    let mut printed = vec![false; ours.len()];
    for o in oracle {
        let Some(i) = o.n.checked_sub(1).filter(|&i| i < ours.len()) else {
            res.fail(format!("{ctx}: @{} beyond our {} values", o.n, ours.len()));
            continue;
        };
        printed[i] = true;
        let (field, def) = (&fields[i], &map.columns[i]);
        if full_metadata {
            if let Some(name) = &def.name {
                if &field.name != name {
                    res.fail(format!(
                        "{ctx} @{}: field name {:?}, column is {name:?}",
                        o.n, field.name
                    ));
                }
            }
        }
        let cx = ColCtx {
            field,
            def,
            full_metadata,
        };
        res.compared_values += 1;
        if let Err(why) = check_value(o, &ours[i], &cx) {
            res.fail(format!(
                "{ctx} @{} `{}` {} ({}): expected {} / got {}: {why}",
                o.n,
                field.name,
                o.ty,
                def.sql,
                show(&o.value),
                short_value(&ours[i])
            ));
        }
    }
    for (i, (&p, v)) in printed.iter().zip(ours).enumerate() {
        if !p && !matches!(v, Value::Missing) {
            res.fail(format!(
                "{ctx} @{}: not in the binlog image, ours {}",
                i + 1,
                short_value(v)
            ));
        }
    }
}

/// Compares our decode of the binlog `binlog` with `mariadb-binlog`'s printout of it: `decoded`
/// (`--base64-output=decode-rows --verbose --verbose`) and `table_metadata`
/// (`--print-table-metadata`). `full_metadata`: the binlog has FULL row metadata (column names
/// are compared then). `what` names the input in assertion messages.
pub fn check_binlog(
    what: &str,
    binlog: &Path,
    decoded: &[u8],
    table_metadata: &[u8],
    full_metadata: bool,
) -> FileResult {
    check_binlog_with(
        what,
        binlog,
        decoded,
        table_metadata,
        full_metadata,
        &|_| {},
    )
}

/// [`check_binlog`], with `fix` applied to every table map the oracle printed before values are
/// compared (to correct what `mariadb-binlog` itself gets wrong, e.g. signedness after YEAR).
pub fn check_binlog_with(
    what: &str,
    binlog: &Path,
    decoded: &[u8],
    table_metadata: &[u8],
    full_metadata: bool,
    fix: &dyn Fn(&mut TableMapDef),
) -> FileResult {
    let mut maps = parse_table_metadata(table_metadata);
    maps.iter_mut().for_each(fix);
    let oracle = parse_decoded(decoded, &maps);
    // Binary-safe independent count of row headers, to cross-check the parser.
    let header_lines = decoded
        .split(|&c| c == b'\n')
        .filter(|l| {
            l.starts_with(b"### INSERT INTO ")
                || l.starts_with(b"### UPDATE ")
                || l.starts_with(b"### DELETE FROM ")
        })
        .count();
    assert_eq!(oracle.headers, header_lines, "{what}: row header count");
    assert_eq!(
        oracle.expected.len() + oracle.absent.len(),
        header_lines,
        "{what}: every printed row is either expected or expected-absent"
    );

    let mut res = FileResult {
        headers: header_lines,
        absent_rows: oracle.absent.len(),
        ..FileResult::default()
    };
    let ours = match decode_file(binlog) {
        Ok(r) => r,
        Err(e) => {
            res.fail(format!("decoding failed: {e}"));
            return res;
        }
    };
    if ours.len() != oracle.expected.len() {
        res.fail(format!(
            "we produced {} row records, the oracle expects {} (plus {} of a rolled-back XA \
             transaction that must be absent)",
            ours.len(),
            oracle.expected.len(),
            oracle.absent.len()
        ));
    }
    for (row, rec) in oracle.expected.iter().zip(&ours) {
        if rec.op != row.op
            || rec.database_name() != Some(row.db.as_str())
            || rec.table_name() != Some(row.table.as_str())
        {
            res.fail(format!(
                "line {}: expected {} {}.{}, got {} {:?}.{:?} at {}; rows out of step, stopping",
                row.line,
                row.op,
                row.db,
                row.table,
                rec.op,
                rec.database_name(),
                rec.table_name(),
                rec.checkpoint
            ));
            break;
        }
        let pair = RowPair {
            row,
            map: &maps[row.map],
            rec,
            full_metadata,
        };
        compare_image(
            &mut res,
            &pair,
            "before",
            row.before.as_ref(),
            rec.before.as_ref(),
        );
        compare_image(
            &mut res,
            &pair,
            "after",
            row.after.as_ref(),
            rec.after.as_ref(),
        );
        res.compared_rows += 1;
    }
    res
}
