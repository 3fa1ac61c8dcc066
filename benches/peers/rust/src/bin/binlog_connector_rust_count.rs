//! mysql-binlog-connector-rust's file parser with no output: `BinlogParser::next` over each file
//! (a `std::fs::File`, as the crate's README example does), every row value parsed, and only the
//! counts printed at the end, as the repository's examples/binlog_count does:
//! "records N rows N values N" (records are events here; values are the cells present in each
//! image, NULL included).
//!
//! `--in-memory` reads each file into memory first and parses from a `Cursor` (no read or seek
//! system call per event).
use std::collections::HashMap;
use std::fs::File;
use std::io::{Cursor, Read, Seek};

use mysql_binlog_connector_rust::binlog_error::BinlogError;
use mysql_binlog_connector_rust::binlog_parser::BinlogParser;
use mysql_binlog_connector_rust::event::event_data::EventData;

fn present(bitmap: &[bool]) -> u64 {
    bitmap.iter().filter(|b| **b).count() as u64
}

#[derive(Default)]
struct Counts {
    events: u64,
    rows: u64,
    values: u64,
}

fn parse<S: Read + Seek>(stream: &mut S, c: &mut Counts) -> Result<(), BinlogError> {
    let mut parser = BinlogParser {
        checksum_length: 0,
        table_map_event_by_table_id: HashMap::new(),
    };
    parser.check_magic(stream)?;
    let end = stream.seek(std::io::SeekFrom::End(0))?;
    stream.seek(std::io::SeekFrom::Start(4))?;
    while stream.stream_position()? < end {
        let (_header, data) = parser.next(stream)?;
        count(data, c);
    }
    Ok(())
}

fn count(data: EventData, c: &mut Counts) {
    c.events += 1;
    match data {
        // MySQL 8 binlog_transaction_compression: the parser has already unpacked and
        // decoded the inner events.
        EventData::TransactionPayload(e) => {
            for (_header, inner) in e.uncompressed_events {
                count(inner, c);
            }
        }
        EventData::WriteRows(e) => {
            c.rows += e.rows.len() as u64;
            c.values += e.rows.len() as u64 * present(&e.included_columns);
        }
        EventData::DeleteRows(e) => {
            c.rows += e.rows.len() as u64;
            c.values += e.rows.len() as u64 * present(&e.included_columns);
        }
        EventData::UpdateRows(e) => {
            c.rows += e.rows.len() as u64;
            c.values += e.rows.len() as u64
                * (present(&e.included_columns_before) + present(&e.included_columns_after));
        }
        _ => {}
    }
}

fn main() -> std::process::ExitCode {
    let mut in_memory = false;
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--in-memory" {
            in_memory = true;
        } else {
            files.push(a);
        }
    }
    if files.is_empty() {
        eprintln!("usage: binlog_connector_rust_count [--in-memory] FILE [FILE...]");
        return std::process::ExitCode::from(2);
    }
    let mut c = Counts::default();
    for name in &files {
        let result = if in_memory {
            std::fs::read(name)
                .map_err(BinlogError::from)
                .and_then(|b| parse(&mut Cursor::new(b), &mut c))
        } else {
            File::open(name)
                .map_err(BinlogError::from)
                .and_then(|mut f| parse(&mut f, &mut c))
        };
        if let Err(e) = result {
            eprintln!("error: {name} after {} events: {e:?}", c.events);
            return std::process::ExitCode::from(1);
        }
    }
    println!("records {} rows {} values {}", c.events, c.rows, c.values);
    std::process::ExitCode::SUCCESS
}
