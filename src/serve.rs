//! `changetrack serve`: the network endpoints of a store, next to `ingest`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use changetrack::{Error, ErrorKind};
use changetrack_kafka::{Server, ServerOptions};

/// Arguments of `changetrack serve`.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// The store directory (opened as a follower: `ingest` may run next to it).
    #[arg(long)]
    store: PathBuf,
    /// Serve the Kafka protocol on HOST:PORT (e.g. 127.0.0.1:9092).
    #[arg(long, value_name = "HOST:PORT")]
    kafka_listen: String,
    /// The topic name Kafka clients read (one partition, 0).
    #[arg(long, default_value = "changetrack")]
    topic: String,
    /// The host name clients are told to connect to (default: the listen address; required
    /// when listening on 0.0.0.0).
    #[arg(long)]
    advertised_host: Option<String>,
    /// Seconds after which a Kafka consumer that stopped fetching loses its group to a standby.
    #[arg(long, default_value_t = 10)]
    session_timeout: u64,
    /// Connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Keep the topic's encoded record batches on disk in DIR, as a broker does, so that
    /// reading history sends stored bytes instead of encoding them again (costs about the
    /// size of the Avro values; one thread encodes new records as they are committed).
    #[arg(long, value_name = "DIR")]
    batch_log: Option<PathBuf>,
    /// The batch log's size limit (K, M, G suffixes): past it the oldest batches go.
    #[arg(long, default_value = "64G", value_parser = crate::parse_size)]
    batch_log_size: u64,
}

fn resolve(addr: &str) -> Result<SocketAddr, Error> {
    addr.to_socket_addrs()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("bad listen address {addr:?}: {e}"),
            )
        })?
        .next()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("listen address {addr:?} resolves to nothing"),
            )
        })
}

pub(crate) fn serve(a: &ServeArgs) -> Result<(), Error> {
    let opts = ServerOptions {
        listen: resolve(&a.kafka_listen)?,
        advertised_host: a.advertised_host.clone(),
        topic: a.topic.clone(),
        session_timeout: Duration::from_secs(a.session_timeout.max(1)),
        max_connections: a.max_connections,
        batch_log: a.batch_log.clone(),
        batch_log_bytes: a.batch_log_size,
        ..ServerOptions::default()
    };
    opts.validate()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot install a signal handler: {e}"),
            )
        })?;
    }
    let store = crate::open_reader(&a.store)?;
    let server = Server::bind(store, opts)?;
    eprintln!(
        "serving {} as Kafka topic {:?} on {}",
        a.store.display(),
        a.topic,
        server.local_addr()
    );
    let handle = server.spawn()?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.stop();
    Ok(())
}
