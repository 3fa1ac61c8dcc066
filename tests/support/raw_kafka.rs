//! Hand-made Kafka requests over a raw connection, and a served store to send them to.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::kafka::{build_store, create_group, serve, tmp, PW};

/// A raw Kafka connection.
pub struct Raw {
    pub s: TcpStream,
    pub corr: i32,
}

pub fn str16(s: &str) -> Vec<u8> {
    let mut v = (s.len() as i16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

pub fn bytes32(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self { s, corr: 0 }
    }

    pub fn frame(&mut self, key: i16, version: i16, body: &[u8]) -> Vec<u8> {
        self.corr += 1;
        let mut f = Vec::new();
        f.extend_from_slice(&key.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&self.corr.to_be_bytes());
        f.extend_from_slice(&str16("raw-test"));
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&f);
        out
    }

    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).is_ok()
    }

    /// One response frame; `None` when the server closed the connection.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let n = i32::from_be_bytes(len);
        let mut b = vec![0u8; usize::try_from(n).ok()?];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }

    /// A request; the response body (after the correlation id), or `None` when closed.
    pub fn call(&mut self, key: i16, version: i16, body: &[u8]) -> Option<Vec<u8>> {
        let f = self.frame(key, version, body);
        if !self.send(&f) {
            return None;
        }
        let r = self.recv()?;
        assert_eq!(i32::from_be_bytes(r[..4].try_into().unwrap()), self.corr);
        Some(r[4..].to_vec())
    }

    /// Whether the server closed the connection (reads EOF or a reset within 10 s).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Logs in with SaslHandshake v1 + SaslAuthenticate v0; the SASL error code.
    pub fn login(&mut self, user: &str, group: &str, pw: &str) -> i16 {
        let r = self
            .call(17, 1, &str16("PLAIN"))
            .expect("handshake answered");
        assert_eq!(&r[..2], &[0, 0]);
        let token = format!("\0{user}-{group}\0{pw}");
        match self.call(36, 0, &bytes32(token.as_bytes())) {
            Some(r) => i16::from_be_bytes([r[0], r[1]]),
            None => -1,
        }
    }
}

/// A Metadata v0/v1 body asking for these topics.
pub fn metadata_v1(topics: &[&str]) -> Vec<u8> {
    let mut b = (topics.len() as i32).to_be_bytes().to_vec();
    for t in topics {
        b.extend_from_slice(&str16(t));
    }
    b
}

pub struct Fixture {
    pub _dir: std::path::PathBuf,
    pub store: std::path::PathBuf,
    pub group: String,
    pub server: changetrack_kafka::ServerHandle,
}

pub fn fixture(name: &str, tweak: impl FnOnce(&mut changetrack_kafka::ServerOptions)) -> Fixture {
    let dir = tmp(name);
    let store = dir.join("store");
    build_store(&store, 2, 1_700_000_000);
    let group = create_group(&store, "g", "alice");
    let server = serve(&store, tweak);
    Fixture {
        _dir: dir,
        store,
        group,
        server,
    }
}

/// A connection logged in as the fixture's group.
pub fn logged_in(f: &Fixture) -> Raw {
    let mut c = Raw::connect(f.server.local_addr());
    assert_eq!(c.login("alice", &f.group, PW), 0);
    c
}

/// OffsetCommit v2 outside any generation (assign mode): the partition's error code.
pub fn commit(c: &mut Raw, group: &str, topic: &str, offset: i64, metadata: &str) -> i16 {
    let mut b = str16(group);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&str16(""));
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&str16(topic));
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&str16(metadata));
    let r = c.call(8, 2, &b).expect("OffsetCommit answered");
    // [topic [partition error]]
    let at = 4 + 2 + topic.len() + 4 + 4;
    i16::from_be_bytes([r[at], r[at + 1]])
}

/// OffsetFetch v1 of partition 0: (offset, metadata, error).
pub fn committed(c: &mut Raw, group: &str, topic: &str) -> (i64, String, i16) {
    let mut b = str16(group);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&str16(topic));
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    let r = c.call(9, 1, &b).expect("OffsetFetch answered");
    let at = 4 + 2 + topic.len() + 4 + 4;
    let offset = i64::from_be_bytes(r[at..at + 8].try_into().unwrap());
    let n = i16::from_be_bytes([r[at + 8], r[at + 9]]).max(0) as usize;
    let meta = String::from_utf8_lossy(&r[at + 10..at + 10 + n]).into_owned();
    let err = i16::from_be_bytes([r[at + 10 + n], r[at + 11 + n]]);
    (offset, meta, err)
}
