//! mysql_cdc's file reader with no output: `mysql_cdc::binlog_reader::BinlogReader` over each
//! file (it takes a `std::fs::File`), every row value parsed, and only the counts printed at the
//! end, as the repository's examples/binlog_count does: "records N rows N values N" (records
//! are events here; values are the cells present in each image, NULL included).
use std::fs::File;

use mysql_cdc::binlog_reader::BinlogReader;
use mysql_cdc::events::binlog_event::BinlogEvent;

fn present(bitmap: &[bool]) -> u64 {
    bitmap.iter().filter(|b| **b).count() as u64
}

fn main() -> std::process::ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: mysql_cdc_count FILE [FILE...]");
        return std::process::ExitCode::from(2);
    }
    let (mut events, mut rows, mut values) = (0u64, 0u64, 0u64);
    for name in &files {
        let reader = match File::open(name)
            .map_err(mysql_cdc::errors::Error::from)
            .and_then(BinlogReader::new)
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {name}: {e:?}");
                return std::process::ExitCode::from(1);
            }
        };
        for item in reader.read_events() {
            let (_header, event) = match item {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {name} after {events} events: {e:?}");
                    return std::process::ExitCode::from(1);
                }
            };
            events += 1;
            match event {
                BinlogEvent::WriteRowsEvent(e) => {
                    rows += e.rows.len() as u64;
                    values += e.rows.len() as u64 * present(&e.columns_present);
                }
                BinlogEvent::DeleteRowsEvent(e) => {
                    rows += e.rows.len() as u64;
                    values += e.rows.len() as u64 * present(&e.columns_present);
                }
                BinlogEvent::UpdateRowsEvent(e) => {
                    rows += e.rows.len() as u64;
                    values += e.rows.len() as u64
                        * (present(&e.columns_before_update) + present(&e.columns_after_update));
                }
                _ => {}
            }
        }
    }
    println!("records {events} rows {rows} values {values}");
    std::process::ExitCode::SUCCESS
}
