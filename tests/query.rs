//! Queries against a brute-force filter over the dumped store, paging, out-of-range errors,
//! and the object index on a store of more than a million records (records visited).

use std::path::{Path, PathBuf};

use changetrack::query::{ChangeTypes, Condition, Query};
use changetrack::record::{json, Checkpoint};
use changetrack::store::ReadFrom;
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, ErrorKind, Op, Store, StoreOptions, SyncMode,
};
use serde_json::Value as J;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-query-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn variant(name: &str) -> Vec<ChangeRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11")
        .join(name);
    let files: Vec<PathBuf> = (1..=3)
        .map(|n| dir.join(format!("mariadb-bin.00000{n}")))
        .collect();
    BinlogReader::open(&files, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `recs` moved to file indexes `+shift` and timestamps `+secs`.
fn shifted(recs: &[ChangeRecord], shift: u32, secs: u32) -> Vec<ChangeRecord> {
    recs.iter()
        .map(|r| {
            let mut r = r.clone();
            r.checkpoint = Checkpoint::new(r.checkpoint.file_index + shift, r.checkpoint.offset);
            r.safe_checkpoint = Checkpoint::new(
                r.safe_checkpoint.file_index + shift,
                r.safe_checkpoint.offset,
            );
            r.timestamp += secs;
            r
        })
        .collect()
}

fn open(dir: &Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            sync: SyncMode::Never,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Four corpus variants, 100 s apart, as four stretches of one stream.
fn corpus_store(dir: &Path) -> Store {
    let store = open(dir);
    for (i, v) in [
        "row-metadata-full",
        "compressed",
        "checksum-none",
        "row-metadata-minimal",
    ]
    .iter()
    .enumerate()
    {
        let i = u32::try_from(i).unwrap();
        store
            .append(&shifted(&variant(v), i * 10, i * 100), None)
            .unwrap();
    }
    store
}

// --- The brute force: plain Rust over the dump's JSON lines, written without the library's
// query code.

struct Row {
    seq: u64,
    /// The running maximum of timestamps up to this record (the store's time axis).
    time: u32,
    op: String,
    db: Option<String>,
    table: Option<String>,
    json: J,
}

fn rows(store: &Store) -> Vec<Row> {
    let mut max = 0u32;
    store
        .iter(ReadFrom::Earliest)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            max = max.max(r.timestamp);
            let j: J = serde_json::from_str(&json::to_json(&r, true)).unwrap();
            let (db, table) = if r.op == Op::Ddl {
                let (d, t) = changetrack::filter::ddl_object(&r.ddl.as_ref().unwrap().statement);
                (d.or_else(|| r.database.clone()), t)
            } else {
                (
                    r.database_name().map(str::to_owned),
                    r.table_name().map(str::to_owned),
                )
            };
            Row {
                seq: r.seq,
                time: max,
                op: r.op.as_str().to_owned(),
                db,
                table,
                json: j,
            }
        })
        .collect()
}

fn like_bf(text: &[char], pat: &[char]) -> bool {
    match pat.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|i| like_bf(&text[i..], rest)),
        Some(('_', rest)) => !text.is_empty() && like_bf(&text[1..], rest),
        Some((c, rest)) => {
            !text.is_empty() && text[0].eq_ignore_ascii_case(c) && like_bf(&text[1..], rest)
        }
    }
}

/// (image, column, op, literal) as the brute force sees a condition.
fn cond_holds(row: &Row, image: &str, col: &str, op: &str, lit: &str) -> bool {
    let fields = row.json["fields"].as_array().cloned().unwrap_or_default();
    let Some(f) = fields.iter().find(|f| f["name"].as_str() == Some(col)) else {
        return false;
    };
    let code = f["type"].as_u64().unwrap();
    let check = |img: &J| -> bool {
        let Some(v) = img.get(col) else { return false };
        match (op, v) {
            ("IS NULL", v) => v.is_null(),
            ("IS NOT NULL", v) => !v.is_null(),
            (_, J::Null) => false,
            ("LIKE", J::String(s)) => like_bf(
                &s.chars().collect::<Vec<_>>(),
                &lit.chars().collect::<Vec<_>>(),
            ),
            (op, v) => {
                let numeric = matches!(code, 0..=5 | 8 | 9 | 13 | 16 | 246);
                let ord = if numeric {
                    let x = match v {
                        J::Number(n) => n.as_f64().unwrap(),
                        J::String(s) => s.parse::<f64>().unwrap(),
                        _ => return false,
                    };
                    x.partial_cmp(&lit.parse::<f64>().unwrap()).unwrap()
                } else {
                    match v {
                        J::String(s) => s.as_str().cmp(lit),
                        _ => return false,
                    }
                };
                match op {
                    "=" => ord.is_eq(),
                    "!=" => ord.is_ne(),
                    "<" => ord.is_lt(),
                    "<=" => ord.is_le(),
                    ">" => ord.is_gt(),
                    ">=" => ord.is_ge(),
                    _ => unreachable!(),
                }
            }
        }
    };
    let before = &row.json["before"];
    let after = &row.json["after"];
    match image {
        "before" => check(before),
        "after" => check(after),
        _ => check(before) || check(after),
    }
}

struct Case {
    database: Option<&'static str>,
    table: Option<&'static str>,
    types: Option<&'static str>,
    /// (image, column, op, literal)
    conds: Vec<(&'static str, &'static str, &'static str, &'static str)>,
    from: Option<u32>,
    to: Option<u32>,
}

fn where_text(c: &(&str, &str, &str, &str)) -> String {
    let col = match c.0 {
        "either" => c.1.to_owned(),
        img => format!("{img}.{}", c.1),
    };
    if c.2.starts_with("IS") {
        format!("{col} {}", c.2)
    } else {
        format!("{col} {} '{}'", c.2, c.3.replace('\'', "''"))
    }
}

fn brute(rows: &[Row], c: &Case, from: u32, to: u32) -> Vec<u64> {
    let types: Vec<&str> = c
        .types
        .unwrap_or("INSERT,UPDATE,DELETE,DDL")
        .split(',')
        .collect();
    rows.iter()
        .filter(|r| r.time >= from && r.time <= to)
        .filter(|r| types.contains(&r.op.as_str()))
        .filter(|r| {
            let (db, table) = match (c.database, c.table.map(|t| t.split_once('.'))) {
                (None, Some(Some((d, t)))) => (Some(d), Some(t)),
                _ => (c.database, c.table),
            };
            db.is_none_or(|d| r.db.as_deref() == Some(d))
                && table.is_none_or(|t| r.table.as_deref() == Some(t))
        })
        .filter(|r| c.conds.iter().all(|k| cond_holds(r, k.0, k.1, k.2, k.3)))
        .map(|r| r.seq)
        .collect()
}

fn run(store: &Store, c: &Case, oldest_first: bool, limit: usize) -> (Vec<u64>, u32, u32) {
    // Page through everything with `limit`, following the cursor.
    let mut q = Query {
        database: c.database.map(str::to_owned),
        table: c.table.map(str::to_owned),
        conditions: c
            .conds
            .iter()
            .map(|k| where_text(k).parse::<Condition>().unwrap())
            .collect(),
        types: c
            .types
            .map_or(ChangeTypes::default(), |t| t.parse().unwrap()),
        from_time: c.from,
        to_time: c.to,
        limit,
        oldest_first,
        cursor: None,
    };
    let mut out = Vec::new();
    loop {
        let page = store.query(&q).unwrap();
        assert!(page.records.len() <= limit);
        out.extend(page.records.iter().map(|r| r.seq));
        match page.next_cursor {
            Some(cur) => q.cursor = Some(cur),
            None => return (out, page.from_time, page.to_time),
        }
    }
}

#[test]
fn queries_match_a_brute_force_filter_over_the_dump() {
    let dir = tmp("brute");
    let store = corpus_store(&dir);
    let all = rows(&store);
    let (t0, t1) = (all[0].time, all.last().unwrap().time);
    let mid = t0 + (t1 - t0) / 2;
    let c = |database, table, types, conds, from, to| Case {
        database,
        table,
        types,
        conds,
        from,
        to,
    };
    let full = (Some(0), Some(u32::MAX));
    let cases = vec![
        c(None, None, None, vec![], full.0, full.1),
        c(Some("corpus"), None, None, vec![], full.0, full.1),
        c(Some("corpus"), Some("t_int"), None, vec![], full.0, full.1),
        c(None, Some("corpus.t_cpk"), None, vec![], full.0, full.1),
        c(None, None, Some("INSERT"), vec![], full.0, full.1),
        c(None, None, Some("UPDATE,DELETE"), vec![], full.0, full.1),
        c(None, None, Some("DDL"), vec![], full.0, full.1),
        c(
            Some("corpus"),
            Some("t_ddl"),
            Some("DDL"),
            vec![],
            full.0,
            full.1,
        ),
        c(
            None,
            None,
            None,
            vec![("either", "pk", ">", "3")],
            full.0,
            full.1,
        ),
        c(
            None,
            None,
            None,
            vec![("after", "pk", "=", "2")],
            full.0,
            full.1,
        ),
        c(
            None,
            None,
            None,
            vec![("before", "pk", "<=", "2")],
            full.0,
            full.1,
        ),
        c(
            None,
            None,
            None,
            vec![("either", "pk", "!=", "1")],
            full.0,
            full.1,
        ),
        c(
            Some("corpus"),
            Some("t_dec"),
            None,
            vec![("either", "d5_2", "<", "0")],
            full.0,
            full.1,
        ),
        c(
            Some("corpus"),
            Some("t_str"),
            None,
            vec![("after", "vc", "LIKE", "%a%")],
            full.0,
            full.1,
        ),
        c(
            Some("corpus"),
            Some("t_str"),
            None,
            vec![("either", "vc", "IS NULL", "")],
            full.0,
            full.1,
        ),
        c(
            Some("corpus"),
            Some("t_str"),
            None,
            vec![("after", "vc", "IS NOT NULL", "")],
            full.0,
            full.1,
        ),
        c(
            Some("corpus"),
            Some("t_str"),
            None,
            vec![("either", "c10", ">=", "b")],
            full.0,
            full.1,
        ),
        c(None, None, None, vec![], Some(t0), Some(mid)),
        c(None, None, None, vec![], Some(mid), None),
        c(None, None, None, vec![], None, Some(mid)),
        c(
            Some("corpus"),
            Some("t_int"),
            Some("UPDATE"),
            vec![("after", "pk", ">=", "1"), ("before", "tiu", ">", "100")],
            Some(t0 + 50),
            Some(t1),
        ),
        c(
            Some("corpus"),
            None,
            Some("INSERT,DDL"),
            vec![],
            Some(mid),
            Some(t1),
        ),
    ];
    let mut nonempty = 0;
    for (i, case) in cases.iter().enumerate() {
        for oldest_first in [true, false] {
            for limit in [7, 100_000] {
                let (got, from, to) = run(&store, case, oldest_first, limit);
                let mut want = brute(&all, case, from, to);
                if !oldest_first {
                    want.reverse();
                }
                assert_eq!(
                    got, want,
                    "case {i} oldest_first={oldest_first} limit={limit}"
                );
                nonempty += usize::from(!got.is_empty());
            }
        }
    }
    assert!(
        nonempty >= cases.len() * 4 - 4,
        "too many empty cases: {nonempty}"
    );
    // Defaults: the last minute of data, newest first, 20 records.
    let page = store.query(&Query::default()).unwrap();
    let want: Vec<u64> = all
        .iter()
        .rev()
        .filter(|r| {
            r.time >= t1 - 60 && ["INSERT", "UPDATE", "DELETE", "DDL"].contains(&r.op.as_str())
        })
        .take(20)
        .map(|r| r.seq)
        .collect();
    assert_eq!(page.records.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
    assert!(page.next_cursor.is_some());
    // Outside the data range: an error that states the range.
    let e = store
        .query(&Query {
            from_time: Some(1),
            to_time: Some(2),
            ..Query::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert!(e.to_string().contains("data range"), "{e}");
    // Bad input.
    for bad in [
        Query {
            limit: 0,
            ..Query::default()
        },
        Query {
            table: Some("no_db".into()),
            ..Query::default()
        },
        Query {
            cursor: Some("x".into()),
            ..Query::default()
        },
        Query {
            from_time: Some(t1),
            to_time: Some(t0),
            ..Query::default()
        },
    ] {
        assert_eq!(
            store.query(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_one_table_query_over_a_million_records_reads_only_that_table() {
    let dir = tmp("million");
    let store = open(&dir);
    let base = variant("row-metadata-full");
    let per_pass = base
        .iter()
        .filter(|r| match r.op {
            Op::Ddl => {
                changetrack::filter::ddl_object(&r.ddl.as_ref().unwrap().statement).1
                    == Some("t_int".into())
            }
            op => op.is_dml() && r.table_name() == Some("t_int"),
        })
        .count() as u64;
    let mut pass = 0u32;
    while store.last_seq() < 1_000_000 {
        store.append(&shifted(&base, pass * 3, pass), None).unwrap();
        pass += 1;
    }
    let total = store.last_seq();
    let q = Query {
        table: Some("corpus.t_int".into()),
        from_time: Some(0),
        limit: 100_000,
        oldest_first: true,
        ..Query::default()
    };
    let t = std::time::Instant::now();
    let page = store.query(&q).unwrap();
    eprintln!(
        "{total} records, {} passes: one-table query returned {} after visiting {} in {:?}",
        pass,
        page.records.len(),
        page.visited,
        t.elapsed()
    );
    assert_eq!(page.records.len() as u64, per_pass * u64::from(pass));
    assert_eq!(page.visited, page.records.len() as u64);
    assert!(page
        .records
        .iter()
        .all(|r| r.table_name() == Some("t_int") || r.op == Op::Ddl));
    // Newest first with the default limit reads 20 records, not the table.
    let page = store
        .query(&Query {
            table: Some("corpus.t_int".into()),
            from_time: Some(0),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(page.records.len(), 20);
    assert!(page.visited <= 21, "visited {}", page.visited);
    // A time window of one pass: only that pass's t_int records are read.
    let mid = pass / 2;
    let t_mid = base[0].timestamp + mid;
    let page = store
        .query(&Query {
            table: Some("corpus.t_int".into()),
            from_time: Some(t_mid),
            to_time: Some(t_mid),
            limit: 100_000,
            ..Query::default()
        })
        .unwrap();
    assert!(!page.records.is_empty());
    assert!(page.visited <= 3 * per_pass, "visited {}", page.visited);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
