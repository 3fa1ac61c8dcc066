//! # changetrack-kafka
//!
//! A Kafka-protocol endpoint for a changetrack store: unmodified Kafka consumers (librdkafka
//! and kcat, confluent-kafka, kafka-python, the Java clients, sarama) and the DTS consumer SDK
//! read the store as one topic with one partition. It uses only the public API of
//! `changetrack`.
//!
//! - Offset = the store's seq; value = the record's DTS Avro bytes; key = null; timestamp = the
//!   source time in milliseconds ([`mapping`]).
//! - SASL/PLAIN with username `<group username>-<group id>`, checked against the store's groups;
//!   `group.id` must be the authenticated group.
//! - Commits go to the group's committed position (the one `consume --commit` moves), with
//!   their metadata kept verbatim.
//! - One active consumer per group: the endpoint holds the group's lease for one client; other
//!   clients of the group are hot standbys (see the `group` module docs).
//!
//! ```no_run
//! use changetrack::{Store, StoreOptions};
//! use changetrack_kafka::{Server, ServerOptions};
//!
//! let store = Store::open("/var/lib/changetrack", StoreOptions { read_only: true, ..StoreOptions::default() })?;
//! let opts = ServerOptions { listen: "127.0.0.1:9092".parse().unwrap(), ..ServerOptions::default() };
//! Server::bind(store, opts)?.run()?;
//! # Ok::<(), changetrack::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod conn;
mod fetch;
mod group;
mod log;
pub mod mapping;
mod metrics;
mod options;
mod sasl;
mod server;
pub mod wire;

pub use batch::{BatchWriter, Header};
pub use metrics::{Counter, Gauge, Metrics};
pub use options::ServerOptions;
pub use sasl::{parse_plain as sasl_plain, PlainToken};
pub use server::{Server, ServerHandle, StopHandle};
