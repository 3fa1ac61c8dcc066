//! Decoder features on real binlogs: GTIDs, compressed payloads, MINIMAL metadata, incidents,
//! unknown events, charsets, XA, DDL settings, the CLI contract and exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

use changetrack::record::json;
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, ErrorKind, Op, Value};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs")
        .join(rel)
}

fn decode(rel: &str) -> (Vec<ChangeRecord>, BinlogReader) {
    let mut reader = BinlogReader::open(&[data(rel)], BinlogOptions::default()).unwrap();
    let mut recs = Vec::new();
    for r in &mut reader {
        recs.push(r.unwrap_or_else(|e| panic!("{rel}: {e}")));
    }
    (recs, reader)
}

#[test]
fn mysql_gtids_are_attached_to_every_record_of_the_transaction() {
    let (recs, _) = decode("mysql/MyFlash/haha.000041");
    let rows: Vec<_> = recs.iter().filter(|r| r.op.is_dml()).collect();
    assert_eq!(rows.len(), 192);
    let gtids: std::collections::BTreeSet<_> = rows.iter().map(|r| r.gtid.clone()).collect();
    assert_eq!(gtids.len(), 7, "one GTID per transaction");
    for r in &rows {
        let g = r.gtid.as_deref().expect("GTID");
        let (uuid, gno) = g.rsplit_once(':').unwrap();
        assert_eq!(uuid.len(), 36, "{g}");
        assert!(gno.parse::<u64>().is_ok(), "{g}");
        // The safe checkpoint is where the transaction starts: before the row.
        assert!(r.safe_checkpoint < r.checkpoint);
    }
}

#[test]
fn tagged_gtid_keeps_its_tag() {
    let (recs, _) = decode("mysql/rust_mysql_common/binlog_transaction_with_GTID_TAG.000001");
    let row = recs.iter().find(|r| r.op == Op::Insert).expect("a row");
    let g = row.gtid.as_deref().unwrap();
    assert_eq!(g.split(':').count(), 3, "uuid:tag:gno expected, got {g}");
}

#[test]
fn mariadb_gtids_and_markers() {
    let (recs, _) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    let first_row = recs.iter().find(|r| r.op.is_dml()).unwrap();
    let g = first_row.gtid.as_deref().unwrap();
    assert_eq!(
        g.split('-').count(),
        3,
        "domain-server-seq expected, got {g}"
    );
    // Every row is inside BEGIN .. COMMIT with the same GTID.
    let mut open: Option<&ChangeRecord> = None;
    for r in &recs {
        match r.op {
            Op::Begin => {
                assert!(open.is_none());
                open = Some(r);
            }
            Op::Commit => {
                let b = open.take().expect("COMMIT without BEGIN");
                assert_eq!(b.gtid, r.gtid);
                assert_eq!(b.safe_checkpoint, r.safe_checkpoint);
            }
            Op::Insert | Op::Update | Op::Delete => {
                assert_eq!(open.expect("row outside a transaction").gtid, r.gtid);
            }
            _ => {}
        }
    }
    assert!(open.is_none());
}

#[test]
fn zstd_transaction_payloads_decode() {
    for f in [
        "mysql/rust_mysql_common/transaction_compression.000001",
        "mysql/mysql-binlog-connector-java/mysql-bin.compressed",
        "mysql/mysql-binlog-connector-rust/mysql-bin.000057",
    ] {
        let (recs, _) = decode(f);
        assert!(
            recs.iter().any(|r| r.op.is_dml()),
            "{f}: no rows from the compressed payload"
        );
        assert!(
            recs.iter().any(|r| r.op == Op::Commit),
            "{f}: the payload's XID must commit"
        );
    }
}

type RowImages = (Op, Option<Vec<Value>>, Option<Vec<Value>>);

#[test]
fn mariadb_compressed_events_equal_uncompressed() {
    for n in 1..=3 {
        let (plain, _) = decode(&format!(
            "mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
        ));
        let (comp, _) = decode(&format!("mariadb-10.11/compressed/mariadb-bin.00000{n}"));
        let rows = |v: &[ChangeRecord]| -> Vec<RowImages> {
            v.iter()
                .filter(|r| r.op.is_dml())
                .map(|r| (r.op, r.before.clone(), r.after.clone()))
                .collect()
        };
        assert_eq!(rows(&plain), rows(&comp), "file {n}");
        let ddl = |v: &[ChangeRecord]| -> Vec<String> {
            v.iter()
                .filter_map(|r| r.ddl.as_ref().map(|d| d.statement.clone()))
                .collect()
        };
        assert_eq!(ddl(&plain), ddl(&comp), "file {n}");
    }
}

#[test]
fn minimal_metadata_names_columns_by_position_and_flags_the_record() {
    let (recs, _) = decode("mysql/rust_mysql_common/minimal_row_metadata.000001");
    let row = recs.iter().find(|r| r.op.is_dml()).unwrap();
    assert!(row.flags.names_missing);
    for (i, f) in row.fields().iter().enumerate() {
        assert_eq!(f.name, format!("@{}", i + 1));
    }
    assert!(json::to_json(row, false).contains("\"names_missing\":true"));
    let (full, _) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    assert!(full
        .iter()
        .filter(|r| r.op.is_dml())
        .all(|r| !r.flags.names_missing));
}

#[test]
fn incidents_are_surfaced_not_ignored() {
    let (_, reader) = decode("mysql/rust_mysql_common/bug40482-bin.000001");
    assert_eq!(
        reader.stats().incidents.len(),
        1,
        "{:?}",
        reader.stats().incidents
    );
    let opts = BinlogOptions {
        fail_on_incident: true,
        ..BinlogOptions::default()
    };
    let err = BinlogReader::open(&[data("mysql/rust_mysql_common/bug40482-bin.000001")], opts)
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Incident);
}

#[test]
fn unknown_events_are_skipped_and_counted() {
    let (_, reader) = decode("mysql/mysql-binlog-connector-java/mysql-bin.aurora-padding");
    assert_eq!(reader.stats().unknown_events.get(&100), Some(&1));
}

#[test]
fn statement_format_dml_is_counted_not_invented() {
    let (recs, reader) = decode("mariadb-public/mariadb-poc/domain_id_0/mariadb-repl-bin.000004");
    assert!(recs.iter().all(|r| !r.op.is_dml()));
    assert!(reader.stats().skipped_statements > 0);
}

#[test]
fn ddl_carries_statement_and_session() {
    let (recs, _) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000002");
    let ddl: Vec<_> = recs.iter().filter(|r| r.op == Op::Ddl).collect();
    assert!(ddl.len() >= 10);
    let alter = ddl
        .iter()
        .find(|r| r.ddl.as_ref().unwrap().statement.starts_with("ALTER"))
        .unwrap();
    let d = alter.ddl.as_ref().unwrap();
    assert!(
        d.session
            .starts_with(&format!("SET TIMESTAMP={}", alter.timestamp)),
        "{}",
        d.session
    );
    assert!(d.session.contains("sql_mode="), "{}", d.session);
    assert!(d.session.contains("character_set_client="), "{}", d.session);
    assert_eq!(alter.database.as_deref(), Some("corpus"));
    // A standalone DDL's safe checkpoint is its own checkpoint.
    assert_eq!(alter.safe_checkpoint, alter.checkpoint);
}

#[test]
fn xa_rollback_drops_rows_and_xa_commit_releases_them() {
    let (recs, reader) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000003");
    assert_eq!(reader.stats().xa_rolled_back, 1);
    let texts: Vec<String> = recs
        .iter()
        .filter(|r| r.op.is_dml())
        .map(|r| json::to_json(r, false))
        .collect();
    assert!(texts.iter().any(|t| t.contains("xa committed")));
    assert!(!texts.iter().any(|t| t.contains("xa rolled back")));
}

#[test]
fn strings_decode_by_charset_to_utf8() {
    let (recs, _) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    let mut seen = std::collections::BTreeSet::new();
    for r in recs.iter().filter(|r| r.op == Op::Insert) {
        let v: serde_json::Value = serde_json::from_str(&json::to_json(r, false)).unwrap();
        for (f, val) in r.fields().iter().zip(r.after.as_ref().unwrap()) {
            if let (Some(cs), Value::Bytes(b)) = (f.charset, val) {
                let s = &v["after"][&f.name];
                if s.as_str() == Some("杭州市") {
                    seen.insert(cs);
                    match cs {
                        "gbk" => assert_eq!(&b[..], &[0xba, 0xbc, 0xd6, 0xdd, 0xca, 0xd0]),
                        "utf8mb4" | "utf8mb3" => assert_eq!(&b[..], "杭州市".as_bytes()),
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(seen.contains("gbk") && seen.contains("utf8mb4"), "{seen:?}");
}

#[test]
fn pre_v4_binlogs_are_unsupported() {
    // magic + a START_EVENT_V3 (type 1) header and body.
    let mut b = vec![0xfe, b'b', b'i', b'n'];
    let size: u32 = 19 + 56;
    b.extend_from_slice(&0u32.to_le_bytes());
    b.push(1);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&(4 + size).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&[0u8; 56]);
    let err = BinlogReader::from_bytes("v3", 1, b, BinlogOptions::default())
        .find_map(Result::err)
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("v1/v3"), "{err}");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_changetrack"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_jsonl_contract_and_exit_codes() {
    let f = data("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    let out = cli(&["decode", "--format", "jsonl", f.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "checkpoint",
            "safe_checkpoint",
            "timestamp",
            "op",
            "database",
            "table",
            "primary_key",
            "fields",
            "before",
            "after",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        let cp = v["checkpoint"].as_str().unwrap();
        let (off, file) = cp.split_once('@').unwrap();
        assert!(off.parse::<u64>().is_ok() && file == "1", "{cp}");
        n += 1;
    }
    assert!(n > 100);

    // Corrupt: exit 1, the message names the file and the offset.
    let corrupt = data("mysql/rust_mysql_common/corrupt-relay-bin.000624");
    let out = cli(&["decode", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt-relay-bin.000624") && err.contains("offset 91204"),
        "{err}"
    );

    // Truncated: exit 3 and where to resume.
    let cut = data("mysql/rust_mysql_common/binlog_truncated_prev_gtid_event.000001");
    let out = cli(&["decode", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resume from offset 120"));

    // Avro framing: 4-byte big-endian length + record, as many records as JSON lines.
    let out = cli(&["decode", "--format", "avro", f.to_str().unwrap()]);
    let mut b = &out.stdout[..];
    let mut records = 0;
    while !b.is_empty() {
        let len = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        changetrack::record::avro::decode_with_apache_avro(&b[4..4 + len]).unwrap();
        b = &b[4 + len..];
        records += 1;
    }
    assert_eq!(records, n);

    // Usage errors exit 2.
    assert_eq!(cli(&["decode"]).status.code(), Some(2));
    assert_eq!(cli(&["decode", "/nonexistent/file"]).status.code(), Some(1));
}

#[test]
fn fuzz_regressions_end_in_typed_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let opts = BinlogOptions {
            max_event_size: 1 << 20,
            ..BinlogOptions::default()
        };
        let mut records = 0;
        let mut error = None;
        for r in BinlogReader::from_bytes(p.clone(), 1, bytes, opts) {
            match r {
                Ok(_) => records += 1,
                Err(e) => error = Some(e),
            }
            assert!(records < 100_000, "{}: runaway record stream", p.display());
        }
        let e = error.unwrap_or_else(|| panic!("{}: expected a typed error", p.display()));
        assert!(
            matches!(e.kind(), ErrorKind::Corruption | ErrorKind::Incomplete),
            "{}: {e}",
            p.display()
        );
        n += 1;
    }
    assert!(n >= 2);
}

/// `decode --format text`: one line per record, in order, the images exactly the JSON objects of
/// `--format jsonl` (columns in table order), DDL on one line. And the three formats, rendered on
/// their own thread, give every record once, in binlog order.
#[test]
fn text_lines_carry_the_json_images_in_order() {
    let file = data("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_changetrack"))
            .args(["--quiet", "decode", "--format", format])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let text = String::from_utf8(run("text")).unwrap();
    let jsonl = String::from_utf8(run("jsonl")).unwrap();
    let (records, _) = decode("mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), records.len());
    assert_eq!(jsonl.lines().count(), records.len());
    let mut dml = 0;
    for ((line, json_line), rec) in lines.iter().zip(jsonl.lines()).zip(&records) {
        let head = format!(
            "{} {} {:<6}",
            rec.checkpoint,
            rec.timestamp,
            rec.op.as_str()
        );
        assert!(line.starts_with(&head), "{line:?} / {head:?}");
        let v: serde_json::Value = serde_json::from_str(json_line).unwrap();
        assert_eq!(v["checkpoint"], rec.checkpoint.to_string());
        if rec.op.is_dml() {
            dml += 1;
            let mut before = String::new();
            json::push_row_image(&mut before, rec, false);
            let mut after = String::new();
            json::push_row_image(&mut after, rec, true);
            assert!(
                line.ends_with(&format!(" before={before} after={after}")),
                "{line}"
            );
            // The same objects as in the JSON line, keys in column order.
            let b: serde_json::Value = serde_json::from_str(&before).unwrap();
            assert_eq!(b, v["before"]);
            let first_key = rec.fields()[0].name.as_str();
            if rec.after.is_some() {
                assert!(after.starts_with(&format!("{{\"{first_key}\":")), "{after}");
            }
        }
        if let Some(ddl) = &rec.ddl {
            assert!(line.ends_with(&ddl.statement.replace('\n', " ")), "{line}");
        }
    }
    assert!(dml > 50, "{dml} row records");
    // Avro: length-prefixed records, as many as decoded.
    let avro = run("avro");
    let (mut at, mut n) = (0usize, 0usize);
    while at < avro.len() {
        let len = u32::from_be_bytes(avro[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
        n += 1;
    }
    assert_eq!((at, n), (avro.len(), records.len()));
}
