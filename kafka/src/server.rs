//! The listener: accepts connections (within the limits), runs one thread per connection and a
//! sweeper that expires idle leases and silent group members, and stops cleanly.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use changetrack::{Error, ErrorKind, Result, Store};
use crossbeam_channel::{Receiver, Sender};

use crate::fetch::Blocks;
use crate::group::Group;
use crate::log::BatchLog;
use crate::metrics::Metrics;
use crate::sasl::AuthPool;
use crate::ServerOptions;

/// State shared by every connection of a server.
pub(crate) struct Shared {
    pub store: Store,
    pub opts: ServerOptions,
    pub host: String,
    pub port: i32,
    pub cluster_id: String,
    pub auth: AuthPool,
    pub blocks: Blocks,
    pub metrics: Arc<Metrics>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    stop: AtomicBool,
    /// Disconnected when the server stops: waits select on it.
    stop_rx: Receiver<()>,
    stop_tx: Mutex<Option<Sender<()>>>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn stop_signal(&self) -> &Receiver<()> {
        &self.stop_rx
    }

    /// The group's shared state (made at its first authenticated connection).
    pub(crate) fn group(&self, id: &str) -> Arc<Group> {
        let mut g = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            g.entry(id.to_owned())
                .or_insert_with(|| Arc::new(Group::new(&self.opts.topic))),
        )
    }

    fn all_groups(&self) -> Vec<Arc<Group>> {
        self.groups
            .lock()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// A Kafka-protocol endpoint serving one store as one topic with one partition.
///
/// ```no_run
/// use changetrack::{Store, StoreOptions};
/// use changetrack_kafka::{Server, ServerOptions};
///
/// let store = Store::open("/var/lib/changetrack", StoreOptions { read_only: true, ..StoreOptions::default() })?;
/// let server = Server::bind(store, ServerOptions::default())?;
/// println!("listening on {}", server.local_addr());
/// let handle = server.spawn()?;
/// // ... later:
/// handle.stop();
/// # Ok::<(), changetrack::Error>(())
/// ```
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
}

/// Stops a running server.
#[derive(Clone)]
pub struct StopHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl StopHandle {
    /// Stops accepting, closes every connection (waiting requests end at once) and releases
    /// every group lease the server holds. Idempotent.
    pub fn stop(&self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!("Kafka endpoint stopping");
        if let Ok(mut tx) = self.shared.stop_tx.lock() {
            tx.take();
        }
        self.shared.blocks.stop();
        if let Ok(conns) = self.shared.conns.lock() {
            for s in conns.values() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }

    /// Whether [`StopHandle::stop`] was called.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.shared.stopping()
    }
}

/// A server running on its own thread ([`Server::spawn`]).
pub struct ServerHandle {
    stop: StopHandle,
    thread: Option<JoinHandle<Result<()>>>,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
}

impl ServerHandle {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle that stops it from anywhere.
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops it and waits until every connection thread ended.
    pub fn stop(mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Server {
    /// Binds the listener (port 0 picks a free port). The store is usually a follower
    /// (`StoreOptions::read_only`), next to an ingester in another process.
    ///
    /// # Errors
    /// `InvalidArgument` for bad options or a batch log that another process holds; `Io` when
    /// the address cannot be bound, the store's identity cannot be read or the batch log cannot
    /// be opened.
    pub fn bind(store: Store, opts: ServerOptions) -> Result<Self> {
        opts.validate()?;
        let listener = TcpListener::bind(opts.listen).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", opts.listen),
            )
            .with_source(e)
        })?;
        let addr = listener.local_addr().map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot read the bound address: {e}"))
        })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the Kafka endpoint listens on a non-loopback address (clients authenticate with SASL/PLAIN, whose passwords cross the network in clear)");
        }
        // A stable cluster id (the DTS SDK fails when it changes): the store's identity.
        let cluster_id = format!("changetrack-{}", store.identity()?);
        let log = match &opts.batch_log {
            Some(dir) => Some(BatchLog::open(dir, &cluster_id, opts.batch_log_bytes)?),
            None => None,
        };
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let host = opts.host();
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            host,
            port: i32::from(addr.port()),
            cluster_id,
            auth: AuthPool::new(store.path(), opts.auth_concurrency),
            blocks: Blocks::new(opts.batch_cache_bytes, log, Arc::clone(&metrics)),
            metrics,
            groups: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            stop_rx,
            stop_tx: Mutex::new(Some(stop_tx)),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            store,
            opts,
        });
        // A batch log left from another history of the store is emptied before anything is
        // served from it.
        shared.blocks.check_log(&shared.store);
        Ok(Self {
            shared,
            listener,
            addr,
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// A handle that stops it.
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shared: Arc::clone(&self.shared),
            addr: self.addr,
        }
    }

    /// Runs it on a new thread.
    ///
    /// # Errors
    /// `Io` when the thread cannot be started.
    pub fn spawn(self) -> Result<ServerHandle> {
        let stop = self.stop_handle();
        let addr = self.addr;
        let metrics = self.metrics();
        let thread = std::thread::Builder::new()
            .name("changetrack-kafka".into())
            .spawn(move || self.run())
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot start the server thread: {e}"),
                )
            })?;
        Ok(ServerHandle {
            stop,
            thread: Some(thread),
            addr,
            metrics,
        })
    }

    /// Serves until [`StopHandle::stop`], then waits for every connection to end.
    ///
    /// # Errors
    /// `Io` when the listener fails.
    pub fn run(self) -> Result<()> {
        let shared = self.shared;
        tracing::info!(addr = %self.addr, topic = %shared.opts.topic, "Kafka endpoint listening");
        let sweeper = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("changetrack-kafka-sweep".into())
                .spawn(move || {
                    while !shared.stopping() {
                        let _ = shared.stop_rx.recv_timeout(Duration::from_millis(100));
                        for g in shared.all_groups() {
                            g.sweep(shared.opts.session_timeout);
                        }
                    }
                })
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")))?
        };
        // Workers that encode record blocks ahead of the consumers (one per CPU).
        let mut workers = Vec::new();
        let spawn = |name: &str, work: fn(&Blocks, &Store)| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let store = shared.store.clone();
                    work(&shared.blocks, &store);
                })
                .map_err(|e| tracing::warn!("cannot start the thread {name}: {e}"))
                .ok()
        };
        if shared.opts.batch_log.is_some() {
            workers.extend(spawn("changetrack-kafka-log", Blocks::fill_log));
        }
        if shared.blocks.enabled() {
            let n = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            for _ in 0..n {
                workers.extend(spawn("changetrack-kafka-encode", Blocks::work));
            }
        }
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for stream in self.listener.incoming() {
            if shared.stopping() {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            threads.retain(|t| !t.is_finished());
            let peer = stream
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            if shared.metrics.connections.get() >= shared.opts.max_connections as u64 {
                shared.metrics.connections_refused.inc();
                tracing::warn!(%peer, "too many connections; closing the new one");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            if let (Ok(mut c), Ok(clone)) = (shared.conns.lock(), stream.try_clone()) {
                c.insert(id, clone);
            }
            shared.metrics.connections.inc();
            shared.metrics.connections_total.inc();
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("changetrack-kafka-conn".into())
                .spawn(move || {
                    crate::conn::serve(&s, id, stream, peer);
                    if let Ok(mut c) = s.conns.lock() {
                        c.remove(&id);
                    }
                    s.metrics.connections.dec();
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    tracing::warn!(%peer, "cannot start a connection thread: {e}");
                    if let Ok(mut c) = shared.conns.lock() {
                        c.remove(&id);
                    }
                    shared.metrics.connections.dec();
                }
            }
        }
        for t in threads {
            let _ = t.join();
        }
        shared.blocks.stop();
        for w in workers {
            let _ = w.join();
        }
        let _ = sweeper.join();
        // Dropping the groups releases every lease held for Kafka clients.
        if let Ok(mut g) = shared.groups.lock() {
            g.clear();
        }
        tracing::info!("Kafka endpoint stopped");
        Ok(())
    }
}
