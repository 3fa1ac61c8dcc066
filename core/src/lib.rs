//! # changetrack
//!
//! Change tracking for MySQL and MariaDB in your own process: read binary logs, decode every row
//! change and DDL statement into exact [`ChangeRecord`]s, and hand them on as JSON or DTS Avro.
//!
//! ```no_run
//! use changetrack::{BinlogOptions, BinlogReader};
//!
//! let mut reader = BinlogReader::open(&["/var/lib/mysql".into()], BinlogOptions::default())?;
//! for record in &mut reader {
//!     let record = record?;
//!     println!("{}", changetrack::record::json::to_json(&record, false));
//! }
//! # Ok::<(), changetrack::Error>(())
//! ```
//!
//! Ingest into a durable store and consume it as a group (one active consumer per group;
//! standbys take over; commits are durable when they return):
//!
//! ```no_run
//! use std::time::Duration;
//! use changetrack::{ingest, IngestOptions, StartAt, Store, StoreOptions};
//!
//! let store = Store::open("/var/lib/changetrack", StoreOptions::default())?;
//! ingest(&store, &["/var/lib/mysql".into()], &IngestOptions::default(), None, &mut |_| {})?;
//! let id = store.groups()?.create("billing", "billing", "Billing_pass1")?;
//! let mut consumer = store.consumer(&id, "billing", "Billing_pass1", StartAt::Committed)?;
//! while let Some(record) = consumer.poll(Duration::from_millis(100))? {
//!     println!("{} {}", record.checkpoint, record.op.as_str());
//!     consumer.commit(&record)?;
//! }
//! # Ok::<(), changetrack::Error>(())
//! ```
//!
//! Features:
//! - MySQL 5.0 to 9.x and MariaDB 10.x/11.x row-format binlogs, with or without CRC32, GTIDs,
//!   MariaDB compressed events, MySQL TRANSACTION_PAYLOAD (zstd), PARTIAL_UPDATE_ROWS (JSON diffs),
//!   XA transactions;
//! - exact values: unsigned ranges, DECIMAL at scale, TIME beyond 24 h and negative, zero dates,
//!   BINARY padding, raw string bytes with their charset;
//! - untrusted input never panics: typed [`Error`]s with file and offset.
//!
//! Not a goal: statement-format binlogs (their DML cannot be tracked row by row; such events are
//! counted and skipped), and pre-v4 binlogs (MySQL 3.23/4.x).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binlog;
mod error;
pub mod filter;
pub mod group;
pub mod ingest;
pub mod query;
pub mod record;
pub mod source;
pub mod store;

pub use binlog::{decode_all, BinlogOptions, BinlogReader, DecodeStats};
pub use error::{Error, ErrorKind, Location, Result};
pub use filter::Filter;
pub use group::{
    CommitAt, Committed, Consumer, ConsumerOptions, GroupInfo, GroupStatus, Groups, Login, StartAt,
    MAX_COMMIT_METADATA,
};
pub use ingest::{ingest, IngestOptions, IngestStats};
pub use record::{
    ChangeRecord, Checkpoint, ColumnKind, Ddl, Field, HistoryColumn, Op, RecordFlags, TableInfo,
    Value,
};
pub use store::{
    DataRange, ReadFrom, RecordIter, Retention, SourcePosition, Store, StoreOptions, StoreStats,
    SyncMode,
};

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
