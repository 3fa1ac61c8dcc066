//! [`ServerOptions`]: every limit of the endpoint, with its default and its bounds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use changetrack::{Error, ErrorKind, Result};

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// Options of [`crate::Server::bind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Where to listen. Default: `127.0.0.1:9092` (loopback: binding another address is a
    /// deliberate choice).
    pub listen: SocketAddr,
    /// The host clients are told to connect to (Metadata, FindCoordinator). Default: the listen
    /// address's IP; required when listening on an unspecified address (`0.0.0.0`, `::`).
    pub advertised_host: Option<String>,
    /// The one topic served (partition 0). Default: `changetrack`. 1 to 249 characters of
    /// `[A-Za-z0-9._-]`, as Kafka topic names.
    pub topic: String,
    /// Connections served at once; more are closed as soon as they are accepted. Default: 1024.
    /// Minimum: 1.
    pub max_connections: usize,
    /// Largest request frame after authentication. Default: 1 MiB. Range: 64 KiB to 64 MiB.
    pub max_request_bytes: usize,
    /// Largest request frame before authentication. Default: 16 KiB. Range: 1 KiB to 1 MiB.
    pub max_unauthenticated_request_bytes: usize,
    /// A connection that sends nothing for this long is closed. Default: 10 minutes (Kafka's
    /// `connections.max.idle.ms` is 9). Minimum: 1 s.
    pub idle_timeout: Duration,
    /// A connection must finish SASL within this long of connecting. Default: 10 s. Minimum:
    /// 100 ms.
    pub auth_timeout: Duration,
    /// Threads that check passwords (Argon2id): checks running at once; others wait (up to
    /// `auth_timeout`). Default: the number of CPUs. Minimum: 1.
    pub auth_concurrency: usize,
    /// How long a consumer that stops fetching keeps its group: after this, another connection
    /// of the group takes over (assign mode), and the store lease the endpoint holds for it
    /// expires if the endpoint itself hangs. Default: 10 s. Minimum: 100 ms.
    pub session_timeout: Duration,
    /// The smallest and largest `session.timeout.ms` a group member may ask for
    /// (`INVALID_SESSION_TIMEOUT` outside). Default: 6 s to 30 min (Kafka's defaults).
    pub member_session_timeout: (Duration, Duration),
    /// The largest Fetch response, whatever the client asks for. Default: 64 MiB. Range: 64 KiB
    /// to 1 GiB.
    pub max_fetch_bytes: usize,
    /// The longest a Fetch waits for data, whatever the client asks for. Default: 30 s.
    /// Minimum: 1 ms.
    pub max_fetch_wait: Duration,
    /// Encoded record batches kept in memory and shared between consumers reading the same
    /// records. Default: 256 MiB. 0 turns the cache off.
    pub batch_cache_bytes: usize,
    /// A directory where encoded record batches of full blocks are kept on disk (the batch
    /// log): a Fetch of history then sends stored bytes, as a broker does, instead of encoding
    /// them again. It costs about the size of the Avro values (several times the store's size)
    /// and one thread that encodes new records as they are committed. A cache only: a batch is
    /// checked (header and CRC-32C) before the server first serves it, and anything damaged is
    /// encoded again from the store. Default: none.
    pub batch_log: Option<PathBuf>,
    /// The batch log's size limit: past it the oldest blocks are removed. Default: 64 GiB.
    /// Minimum: 64 MiB.
    pub batch_log_bytes: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_host: None,
            topic: "changetrack".to_owned(),
            max_connections: 1024,
            max_request_bytes: 1 << 20,
            max_unauthenticated_request_bytes: 16 << 10,
            idle_timeout: Duration::from_secs(600),
            auth_timeout: Duration::from_secs(10),
            auth_concurrency: cpus,
            session_timeout: Duration::from_secs(10),
            member_session_timeout: (Duration::from_secs(6), Duration::from_secs(1800)),
            max_fetch_bytes: 64 << 20,
            max_fetch_wait: Duration::from_secs(30),
            batch_cache_bytes: 256 << 20,
            batch_log: None,
            batch_log_bytes: 64 << 30,
        }
    }
}

fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl ServerOptions {
    /// Checks every option.
    ///
    /// # Errors
    /// `InvalidArgument` naming the option and its bounds.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(msg))
            }
        };
        check(
            valid_topic(&self.topic),
            "the topic has 1 to 249 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        )?;
        check(self.max_connections >= 1, "max_connections is at least 1")?;
        check(
            (64 << 10..=64 << 20).contains(&self.max_request_bytes),
            "max_request_bytes is 64 KiB to 64 MiB",
        )?;
        check(
            (1 << 10..=1 << 20).contains(&self.max_unauthenticated_request_bytes),
            "max_unauthenticated_request_bytes is 1 KiB to 1 MiB",
        )?;
        check(
            self.idle_timeout >= Duration::from_secs(1),
            "idle_timeout is at least 1 s",
        )?;
        check(
            self.auth_timeout >= Duration::from_millis(100),
            "auth_timeout is at least 100 ms",
        )?;
        check(self.auth_concurrency >= 1, "auth_concurrency is at least 1")?;
        check(
            self.session_timeout >= Duration::from_millis(100),
            "session_timeout is at least 100 ms",
        )?;
        check(
            self.member_session_timeout.0 <= self.member_session_timeout.1,
            "the member session timeout range is empty",
        )?;
        check(
            (64 << 10..=1 << 30).contains(&self.max_fetch_bytes),
            "max_fetch_bytes is 64 KiB to 1 GiB",
        )?;
        check(
            self.max_fetch_wait >= Duration::from_millis(1),
            "max_fetch_wait is at least 1 ms",
        )?;
        check(
            self.batch_log_bytes >= 64 << 20,
            "batch_log_bytes is at least 64 MiB",
        )?;
        if self.advertised_host.is_none() && self.listen.ip().is_unspecified() {
            return Err(invalid(
                "listening on an unspecified address needs an advertised host",
            ));
        }
        if let Some(h) = &self.advertised_host {
            check(
                !h.is_empty() && h.len() <= 255 && !h.chars().any(char::is_whitespace),
                "the advertised host is a host name or address",
            )?;
        }
        Ok(())
    }

    /// The host clients are told to connect to.
    #[must_use]
    pub fn host(&self) -> String {
        self.advertised_host
            .clone()
            .unwrap_or_else(|| self.listen.ip().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        ServerOptions::default().validate().unwrap();
        let bad = [
            ServerOptions {
                topic: "a b".into(),
                ..ServerOptions::default()
            },
            ServerOptions {
                max_request_bytes: 10,
                ..ServerOptions::default()
            },
            ServerOptions {
                listen: "0.0.0.0:9092".parse().unwrap(),
                ..ServerOptions::default()
            },
            ServerOptions {
                max_connections: 0,
                ..ServerOptions::default()
            },
        ];
        for o in bad {
            assert_eq!(
                o.validate().unwrap_err().kind(),
                changetrack::ErrorKind::InvalidArgument
            );
        }
    }
}
