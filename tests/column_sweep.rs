//! Column-order sweep against a private MariaDB server (issue 14).
//!
//! The servers describe a table's columns in the TABLE_MAP event's optional metadata as lists
//! that count only some columns: one signedness bit per numeric column, one charset per
//! character column, one per ENUM/SET column. A decoder that counts a column type differently
//! from the server gives every later column of that list the wrong entry, e.g. the charset of
//! the column before it (MariaDB counts GEOMETRY as a character column, `mysql_common` did
//! not, so a CHAR after a POINT came out as `binary`).
//!
//! The sweep: for every column type T of the list below, a table places T before and after
//! each of CHAR, VARCHAR, TEXT, ENUM, SET, GEOMETRY and an unsigned INT (columns of distinct
//! charsets, so that a shifted entry shows). Rows are inserted (values, NULLs), updated and
//! deleted, with `binlog_row_metadata=FULL` and then again with `MINIMAL`. For each binlog:
//! - every column's charset and signedness from our decoder equals `information_schema.COLUMNS`;
//! - every row value equals what `mariadb-binlog --base64-output=decode-rows -vv` printed, value
//!   by value (`tests/support/binlog_oracle.rs`; signedness taken from information_schema, see
//!   below);
//! - the records replayed onto empty tables give exactly what `SELECT` returns, every column
//!   compared by its bytes (`HEX()`), its number or its text.
//!
//! Found on the way: `mariadb-binlog` 10.11 itself misreads signedness after a YEAR column
//! (the server counts YEAR in the signedness bits, its client does not), so a signed INT after
//! a YEAR prints as `INT UNSIGNED` in `--print-table-metadata`. The oracle's signedness is
//! therefore replaced by information_schema's before its values are compared.

#[path = "support/binlog_oracle.rs"]
mod binlog_oracle;
#[path = "support/mariadb.rs"]
mod mariadb;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use binlog_oracle::frac;
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, Op, Value};
use mariadb::MariaDb;

/// Column types under test, each with two values (SQL literals).
const TYPES: &[(&str, &str, &str)] = &[
    ("TINYINT", "-128", "127"),
    ("TINYINT UNSIGNED", "255", "7"),
    ("SMALLINT", "-32768", "12"),
    ("SMALLINT UNSIGNED", "65535", "1"),
    ("MEDIUMINT", "-8388608", "8388607"),
    ("MEDIUMINT UNSIGNED", "16777215", "3"),
    ("INT", "-2147483648", "5"),
    ("INT UNSIGNED", "4294967295", "0"),
    ("BIGINT", "-9223372036854775808", "42"),
    ("BIGINT UNSIGNED", "18446744073709551615", "1"),
    ("DECIMAL(12,3)", "-123456789.125", "0.001"),
    ("DECIMAL(5,2) UNSIGNED", "999.99", "0.50"),
    ("FLOAT", "-1.5", "3.25"),
    ("DOUBLE", "2.5e300", "-0.125"),
    ("BIT(10)", "b'1111111111'", "b'1'"),
    ("YEAR", "2155", "1901"),
    ("DATE", "'9999-12-31'", "'1000-01-01'"),
    ("TIME(3)", "'-838:59:58.999'", "'12:00:00.500'"),
    (
        "DATETIME(6)",
        "'2024-02-29 23:59:59.999999'",
        "'1970-01-01 00:00:00'",
    ),
    (
        "TIMESTAMP(2)",
        "'2038-01-19 03:14:07.99'",
        "'1970-01-01 00:00:01'",
    ),
    ("CHAR(4) CHARACTER SET ascii", "'ab'", "'zz z'"),
    ("VARCHAR(7) CHARACTER SET utf8mb3", "'ñandú'", "''"),
    ("BINARY(4)", "X'0102'", "X'FFFFFFFF'"),
    ("VARBINARY(8)", "X'00FF00'", "X''"),
    ("TINYTEXT CHARACTER SET latin1", "'àé'", "'x'"),
    ("TEXT CHARACTER SET utf8mb4", "'😀 ok'", "'t'"),
    ("MEDIUMTEXT CHARACTER SET cp1251", "'Жук'", "'m'"),
    ("LONGTEXT CHARACTER SET utf8mb4", "'long'", "''"),
    ("TINYBLOB", "X'00'", "X'01'"),
    ("BLOB", "X'DEADBEEF'", "X''"),
    ("MEDIUMBLOB", "X'0A0B'", "X'FF'"),
    ("LONGBLOB", "X'CAFE'", "X'00'"),
    ("ENUM('a','ÿ') CHARACTER SET latin1", "'ÿ'", "'a'"),
    ("SET('p','q','ü') CHARACTER SET utf8mb4", "'p,ü'", "''"),
    ("JSON", r#"'{"a": [1, 2.5, "x"]}'"#, "'null'"),
    (
        "GEOMETRY",
        "ST_GeomFromText('POINT(1 2)')",
        "ST_GeomFromText('LINESTRING(0 0,1 1)')",
    ),
    (
        "POINT",
        "ST_GeomFromText('POINT(120.15 30.28)')",
        "ST_GeomFromText('POINT(0 0)')",
    ),
    ("INET6", "'::1'", "'2001:db8::ff'"),
    (
        "UUID",
        "'123e4567-e89b-12d3-a456-426614174000'",
        "'00000000-0000-0000-0000-000000000001'",
    ),
    ("INET4", "'1.2.3.4'", "'255.255.255.255'"),
];

/// The columns T is placed around (name, type, two values).
const ANCHORS: &[(&str, &str, &str, &str)] = &[
    ("c", "CHAR(6) CHARACTER SET latin1", "'é'", "'zz'"),
    ("v", "VARCHAR(8) CHARACTER SET utf8mb4", "'ж€'", "'v'"),
    ("x", "TEXT CHARACTER SET cp1251", "'Жук'", "''"),
    ("e", "ENUM('e1','é2') CHARACTER SET latin1", "'é2'", "'e1'"),
    (
        "s",
        "SET('s1','ş2') CHARACTER SET utf8mb4",
        "'s1,ş2'",
        "'s1'",
    ),
    (
        "g",
        "POINT",
        "ST_GeomFromText('POINT(3 4)')",
        "ST_GeomFromText('POINT(-1 -2)')",
    ),
    ("u", "INT UNSIGNED", "4000000000", "1"),
];

/// The columns of table `t{i}`: `id`, then `p0`, anchor, `p1`, anchor, ..., `p{n}` (name, type).
fn columns(t: &str) -> Vec<(String, String)> {
    let mut cols = vec![(
        "id".to_owned(),
        "INT UNSIGNED NOT NULL PRIMARY KEY".to_owned(),
    )];
    for (k, (name, ty, _, _)) in ANCHORS.iter().enumerate() {
        cols.push((format!("p{k}"), t.to_owned()));
        cols.push(((*name).to_owned(), (*ty).to_owned()));
    }
    cols.push((format!("p{}", ANCHORS.len()), t.to_owned()));
    cols
}

/// The workload of one database: a table per type, three rows each (values 1, values 2,
/// NULLs), then an UPDATE of row 1 to the second values and a DELETE of row 2.
fn workload(db: &str) -> String {
    let mut sql = format!("CREATE DATABASE {db} CHARACTER SET utf8mb4; USE {db};\n");
    for (i, (ty, a, b)) in TYPES.iter().enumerate() {
        let cols = columns(ty);
        let defs: Vec<String> = cols.iter().map(|(n, t)| format!("`{n}` {t}")).collect();
        let _ = writeln!(
            sql,
            "CREATE TABLE t{i} ({}) ENGINE=InnoDB;",
            defs.join(", ")
        );
        let row = |id: u32, which: usize| {
            let mut v = vec![id.to_string()];
            for (name, _) in &cols[1..] {
                let val = if name.starts_with('p') {
                    match which {
                        0 => (*a).to_owned(),
                        1 => (*b).to_owned(),
                        _ => "NULL".to_owned(),
                    }
                } else {
                    let anchor = ANCHORS.iter().find(|x| x.0 == name).unwrap();
                    match which {
                        0 => anchor.2.to_owned(),
                        1 => anchor.3.to_owned(),
                        _ => "NULL".to_owned(),
                    }
                };
                v.push(val);
            }
            format!("({})", v.join(", "))
        };
        let _ = writeln!(
            sql,
            "INSERT INTO t{i} VALUES {}, {}, {};",
            row(1, 0),
            row(2, 1),
            row(3, 2)
        );
        let sets: Vec<String> = cols[1..]
            .iter()
            .map(|(name, _)| {
                let v = if name.starts_with('p') {
                    (*b).to_owned()
                } else {
                    ANCHORS.iter().find(|x| x.0 == name).unwrap().3.to_owned()
                };
                format!("`{name}` = {v}")
            })
            .collect();
        let _ = writeln!(sql, "UPDATE t{i} SET {} WHERE id = 1;", sets.join(", "));
        let _ = writeln!(sql, "DELETE FROM t{i} WHERE id = 2;");
    }
    sql
}

/// information_schema's view of one column.
struct SchemaColumn {
    charset: Option<String>,
    unsigned: bool,
    data_type: String,
}

/// (table, column position 0-based) -> information_schema's charset, signedness and type.
fn schema(m: &MariaDb, db: &str) -> BTreeMap<(String, usize), SchemaColumn> {
    let out = m.sql(&format!(
        "SELECT TABLE_NAME, ORDINAL_POSITION, IFNULL(CHARACTER_SET_NAME, 'NULL'), COLUMN_TYPE, \
         DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}'"
    ));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "information_schema line {l:?}");
            (
                (f[0].to_owned(), f[1].parse::<usize>().unwrap() - 1),
                SchemaColumn {
                    charset: (f[2] != "NULL").then(|| f[2].to_owned()),
                    unsigned: f[3].contains("unsigned"),
                    data_type: f[4].to_owned(),
                },
            )
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02X}");
        s
    })
}

/// The SELECT expression giving a column's canonical text, per information_schema DATA_TYPE.
fn select_expr(col: &str, data_type: &str) -> String {
    match data_type {
        "float" | "double" => format!("CAST(`{col}` AS DOUBLE)"),
        "bit" => format!("`{col}` + 0"),
        "timestamp" => format!("UNIX_TIMESTAMP(`{col}`)"),
        "enum" | "set" => format!("CONCAT(`{col}` + 0, ':', HEX(`{col}`))"),
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal" | "year" | "date"
        | "time" | "datetime" => format!("`{col}`"),
        _ => format!("HEX(`{col}`)"),
    }
}

/// Our value as the text `select_expr` gives for it.
fn canon(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Missing => "MISSING".into(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(x) => format!("{}", f64::from(*x)),
        Value::Double(x) => format!("{x}"),
        Value::Decimal(d) => d.to_string(),
        Value::Bit(b) => b.to_string(),
        Value::Year(y) => format!("{y:04}"),
        Value::Date { year, month, day } => format!("{year:04}-{month:02}-{day:02}"),
        Value::Time {
            negative,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => format!(
            "{}{hour:02}:{minute:02}:{second:02}{}",
            if *negative { "-" } else { "" },
            frac(*micros, *fsp)
        ),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
            fsp,
        } => format!(
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{}",
            frac(*micros, *fsp)
        ),
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => format!("{seconds}{}", frac(*micros, *fsp)),
        Value::Bytes(b) => hex(b),
        Value::Enum { index, label } => match label {
            Some(l) => format!("{index}:{}", hex(l)),
            None => format!("{index}:?"),
        },
        Value::Set { bits, labels } => match labels {
            Some(l) => format!("{bits}:{}", hex(l)),
            None => format!("{bits}:?"),
        },
        Value::Json(j) => format!("json:{j}"),
        Value::JsonDiff(j) => format!("jsondiff:{j}"),
        Value::Geometry { srid, wkb } => {
            let mut b = srid.to_le_bytes().to_vec();
            b.extend_from_slice(wkb);
            hex(&b)
        }
    }
}

/// Whether our canonical text and the server's agree (numbers compared as numbers, JSON as
/// documents, ENUM/SET by index when the binlog carries no labels).
fn same(ours: &str, server: &str, data_type: &str) -> bool {
    if ours == server {
        return true;
    }
    match data_type {
        "float" | "double" => match (ours.parse::<f64>(), server.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        "enum" | "set" => ours
            .strip_suffix(":?")
            .is_some_and(|i| server.split(':').next() == Some(i)),
        // MariaDB's JSON is a LONGTEXT: the binlog carries the text (bytes).
        "longtext" | "json" => {
            let doc = |s: &str| -> Option<serde_json::Value> {
                let text = if let Some(j) = s.strip_prefix("json:") {
                    j.to_owned()
                } else {
                    let bytes: Vec<u8> = (0..s.len() / 2)
                        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect::<Option<_>>()?;
                    String::from_utf8(bytes).ok()?
                };
                serde_json::from_str(&text).ok()
            };
            matches!((doc(ours), doc(server)), (Some(a), Some(b)) if a == b)
        }
        _ => false,
    }
}

fn decode(files: &[PathBuf]) -> Vec<ChangeRecord> {
    BinlogReader::open(files, BinlogOptions::default())
        .expect("open binlogs")
        .map(|r| r.expect("decode"))
        .filter(|r| r.op.is_dml())
        .collect()
}

fn mariadb_binlog(file: &Path, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("mariadb-binlog")
        .args(["--no-defaults", "--base64-output=decode-rows"])
        .args(extra)
        .arg(file)
        .output()
        .expect("run mariadb-binlog");
    assert!(
        out.status.success(),
        "mariadb-binlog {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The binlog files written since `before` was listed, less the last (the empty one the final
/// FLUSH BINARY LOGS opened).
fn new_binlogs(m: &MariaDb, before: &[PathBuf]) -> Vec<PathBuf> {
    let mut new: Vec<PathBuf> = m
        .binlogs()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    new.pop();
    assert!(!new.is_empty(), "no binlog written");
    new
}

/// Whether our charset for a column is information_schema's: the same name; for binary data
/// (no charset there) `binary` or none; with MINIMAL metadata none for ENUM/SET (their
/// charsets are FULL only).
fn charset_ok(sc: &SchemaColumn, ours: Option<&str>, full: bool) -> bool {
    match (sc.charset.as_deref(), ours) {
        (Some(w), Some(c)) => w == c,
        (None, c) => c.is_none() || c == Some("binary"),
        (Some(_), None) => !full && matches!(sc.data_type.as_str(), "enum" | "set"),
    }
}

/// Replays the row records onto empty tables: table -> rows of canonical values. An UPDATE or
/// DELETE must find the row of its before image.
fn replay(
    db: &str,
    records: &[&ChangeRecord],
    fails: &mut Vec<String>,
) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut tables: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let image = |img: &Option<Vec<Value>>| -> Vec<String> {
        img.as_ref().unwrap().iter().map(canon).collect()
    };
    for r in records {
        let table = r.table_name().unwrap().to_owned();
        let rows = tables.entry(table.clone()).or_default();
        match r.op {
            Op::Insert => rows.push(image(&r.after)),
            Op::Delete | Op::Update => {
                let before = image(&r.before);
                let Some(at) = rows.iter().position(|x| *x == before) else {
                    fails.push(format!(
                        "{db}.{table}: {} of a row not replayed: {before:?}",
                        r.op
                    ));
                    continue;
                };
                if r.op == Op::Update {
                    rows[at] = image(&r.after);
                } else {
                    rows.remove(at);
                }
            }
            _ => {}
        }
    }
    tables
}

/// Compares replayed rows with what SELECT returns for `db.table` (columns `names`, by id).
/// Returns the number of values compared.
fn compare_with_select(
    m: &MariaDb,
    (db, table): (&str, &str),
    names: &[String],
    rows: &[Vec<String>],
    schema: &BTreeMap<(String, usize), SchemaColumn>,
    fails: &mut Vec<String>,
) -> usize {
    let data_type = |i: usize| schema[&(table.to_owned(), i)].data_type.as_str();
    let exprs: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("IFNULL({}, 'NULL')", select_expr(n, data_type(i))))
        .collect();
    let out = m.sql(&format!(
        "SET time_zone = '+00:00'; SELECT {} FROM {db}.{table} ORDER BY id",
        exprs.join(", ")
    ));
    let server: Vec<Vec<String>> = out
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let mut replayed = rows.to_vec();
    replayed.sort_by_key(|r| r[0].parse::<u64>().unwrap_or(0));
    if replayed.len() != server.len() {
        fails.push(format!(
            "{db}.{table}: {} rows replayed, SELECT returns {}",
            replayed.len(),
            server.len()
        ));
        return 0;
    }
    let mut compared = 0;
    for (ours_row, server_row) in replayed.iter().zip(&server) {
        for (i, (o, s)) in ours_row.iter().zip(server_row).enumerate() {
            compared += 1;
            if !same(o, s, data_type(i)) {
                fails.push(format!(
                    "{db}.{table} id {} column {} `{}` ({}): replayed {o:.80}, SELECT {s:.80}",
                    server_row[0],
                    i + 1,
                    names[i],
                    data_type(i)
                ));
            }
        }
    }
    compared
}

/// Runs the three checks on the binlogs of one database; returns the failures.
fn check(m: &MariaDb, db: &str, files: &[PathBuf], full: bool) -> Vec<String> {
    let mut fails = Vec::new();
    let schema = schema(m, db);
    let records = decode(files);
    let ours: Vec<&ChangeRecord> = records
        .iter()
        .filter(|r| r.database_name() == Some(db))
        .collect();
    assert_eq!(
        ours.len(),
        TYPES.len() * 5,
        "{db}: 3 inserts, 1 update, 1 delete per table"
    );

    // 1. Charset and signedness of every column, as information_schema has them.
    let mut checked_columns = 0usize;
    for r in &ours {
        let table = r.table_name().unwrap().to_owned();
        for (i, f) in r.fields().iter().enumerate() {
            let Some(sc) = schema.get(&(table.clone(), i)) else {
                fails.push(format!(
                    "{db}.{table} column {}: not in information_schema",
                    i + 1
                ));
                continue;
            };
            checked_columns += 1;
            if !charset_ok(sc, f.charset, full) {
                fails.push(format!(
                    "{db}.{table} column {} `{}` ({}): charset {:?}, information_schema says {:?}",
                    i + 1,
                    f.name,
                    sc.data_type,
                    f.charset,
                    sc.charset
                ));
            }
            let numeric = matches!(
                sc.data_type.as_str(),
                "tinyint"
                    | "smallint"
                    | "mediumint"
                    | "int"
                    | "bigint"
                    | "decimal"
                    | "float"
                    | "double"
            );
            if let Some(u) = f.unsigned {
                if numeric && u != sc.unsigned {
                    fails.push(format!(
                        "{db}.{table} column {} `{}` ({}): unsigned={u}, information_schema says {}",
                        i + 1,
                        f.name,
                        sc.data_type,
                        sc.unsigned
                    ));
                }
            } else if numeric {
                fails.push(format!(
                    "{db}.{table} column {}: signedness unknown (MariaDB logs it with FULL and MINIMAL)",
                    i + 1
                ));
            }
        }
    }
    assert!(
        checked_columns > TYPES.len() * 5 * 15,
        "{db}: columns checked"
    );

    // 2. Value by value against mariadb-binlog, file by file.
    for file in files {
        let decoded = mariadb_binlog(file, &["--verbose", "--verbose"]);
        let meta = mariadb_binlog(file, &["--print-table-metadata"]);
        let res = binlog_oracle::check_binlog_with(
            &format!("{db} {}", file.display()),
            file,
            &decoded,
            &meta,
            full,
            &|map: &mut binlog_oracle::TableMapDef| {
                // mariadb-binlog's signedness is wrong after a YEAR column: take
                // information_schema's.
                if map.db == db {
                    for (i, c) in map.columns.iter_mut().enumerate() {
                        if let Some(sc) = schema.get(&(map.table.clone(), i)) {
                            c.unsigned = sc.unsigned;
                        }
                    }
                }
            },
        );
        fails.extend(res.mismatches.iter().cloned());
        if res.mismatch_count > res.mismatches.len() {
            fails.push(format!(
                "... and {} more mismatches with mariadb-binlog",
                res.mismatch_count - res.mismatches.len()
            ));
        }
        if res.compared_rows == 0 && file == files.last().unwrap() && fails.is_empty() {
            fails.push(format!(
                "{}: no rows compared with mariadb-binlog",
                file.display()
            ));
        }
    }

    // 3. Replay onto empty tables, then compare with SELECT.
    let tables = replay(db, &ours, &mut fails);
    assert_eq!(tables.len(), TYPES.len(), "{db}: tables replayed");
    let names: Vec<String> = columns("").into_iter().map(|(n, _)| n).collect();
    for (table, rows) in &tables {
        compare_with_select(m, (db, table), &names, rows, &schema, &mut fails);
    }
    fails
}

#[test]
fn every_column_order_decodes_exactly() {
    if !MariaDb::required("every_column_order_decodes_exactly") {
        return;
    }
    let m = MariaDb::start("sweep", &["--max-binlog-size=1073741824"]);
    let mut failures = Vec::new();
    let mut before = m.binlogs();
    for (db, metadata) in [("sweep_full", "FULL"), ("sweep_minimal", "MINIMAL")] {
        m.sql(&format!(
            "SET GLOBAL binlog_row_metadata = {metadata}; FLUSH BINARY LOGS"
        ));
        let script = m.dir.join(format!("{db}.sql"));
        std::fs::write(&script, workload(db)).unwrap();
        m.sql_file(&script);
        m.sql("FLUSH BINARY LOGS");
        let files = new_binlogs(&m, &before);
        let mut seen = std::collections::BTreeSet::new();
        for f in check(&m, db, &files, metadata == "FULL") {
            if seen.insert(f.clone()) {
                failures.push(format!("[{metadata}] {f}"));
            }
        }
        before = m.binlogs();
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(80)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// MariaDB's `COMPRESSED` columns (binlog types 140 and 141, zlib, raw deflate by default and
/// zlib-wrapped with `column_compression_zlib_wrap`): decoded to their values, every value equal
/// to SELECT's, every charset to information_schema's, and the CHAR after them keeps its own.
#[test]
fn compressed_columns_decode_to_their_values() {
    if !MariaDb::required("compressed_columns_decode_to_their_values") {
        return;
    }
    let m = MariaDb::start("compressed", &["--max-binlog-size=1073741824"]);
    let before = m.binlogs();
    m.sql("FLUSH BINARY LOGS");
    let db = "zcol";
    m.sql(&format!(
        "CREATE DATABASE {db} CHARACTER SET utf8mb4;
         CREATE TABLE {db}.t (id INT UNSIGNED PRIMARY KEY,
           v VARCHAR(300) COMPRESSED CHARACTER SET latin1,
           x TEXT COMPRESSED,
           b BLOB COMPRESSED,
           w VARBINARY(500) COMPRESSED,
           mt MEDIUMTEXT COMPRESSED CHARACTER SET cp1251,
           c CHAR(5) CHARACTER SET latin1, n INT UNSIGNED) ENGINE=InnoDB;
         INSERT INTO {db}.t VALUES
           (1, REPEAT('abc', 90), REPEAT('é', 2000), REPEAT(X'00FF', 3000), REPEAT('w', 400),
               REPEAT('Жук', 5000), 'é', 4000000000),
           (2, 'x', 'y', X'01', 'z', 'Ж', 'zz', 1),
           (3, '', '', X'', '', '', '', 0),
           (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
         SET SESSION column_compression_zlib_wrap = ON;
         INSERT INTO {db}.t VALUES (5, REPEAT('wrapped ', 30), REPEAT('ü', 999), REPEAT(X'AB', 777),
               REPEAT('q', 333), REPEAT('Ё', 4444), 'ok', 7);
         UPDATE {db}.t SET v = REPEAT('upd', 80), x = CONCAT(x, '!') WHERE id = 1;
         DELETE FROM {db}.t WHERE id = 2;
         FLUSH BINARY LOGS;"
    ));
    let files = new_binlogs(&m, &before);
    let schema = schema(&m, db);
    let records = decode(&files);
    let ours: Vec<&ChangeRecord> = records
        .iter()
        .filter(|r| r.database_name() == Some(db))
        .collect();
    assert_eq!(ours.len(), 7, "5 inserts, 1 update, 1 delete");
    let mut fails = Vec::new();
    for r in &ours {
        for (i, f) in r.fields().iter().enumerate() {
            let sc = &schema[&("t".to_owned(), i)];
            if !charset_ok(sc, f.charset, true) {
                fails.push(format!(
                    "column {} `{}`: charset {:?}, information_schema {:?}",
                    i + 1,
                    f.name,
                    f.charset,
                    sc.charset
                ));
            }
        }
    }
    let tables = replay(db, &ours, &mut fails);
    let names: Vec<String> = ["id", "v", "x", "b", "w", "mt", "c", "n"]
        .map(String::from)
        .to_vec();
    let compared = compare_with_select(&m, (db, "t"), &names, &tables["t"], &schema, &mut fails);
    assert_eq!(compared, 4 * names.len());
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
