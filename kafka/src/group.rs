//! A consumer group as the endpoint sees it: who holds the group's store lease, and the
//! members of subscribe-mode consumers (Kafka's group coordinator, for one partition).
//!
//! **The lease.** A changetrack group has one active consumer at a time (`Consumer`, with its
//! lease file and flock), whether it reads through the library, the CLI or Kafka. The endpoint
//! holds that lease, through a library `Consumer`, on behalf of one Kafka *client* at a time: a
//! client is the peer's IP address with its `client.id` (Kafka clients open several
//! connections: bootstrap, partition leader, coordinator). Only one *connection* of the group
//! receives records: the first whose Fetch found the lease free. Every other Fetch of the
//! group gets an empty answer (a hot standby) until that connection closes, or sends nothing
//! for `session_timeout`, or, in subscribe mode, a rebalance gives partition 0 to another
//! member. Commits are accepted from the client that holds the lease (or, when it is free,
//! take it); a client that was replaced gets `UNKNOWN_MEMBER_ID`, and can never move the
//! group's position. When a library consumer holds the lease, Kafka clients are standbys.
//!
//! **Members.** JoinGroup/SyncGroup/Heartbeat/LeaveGroup follow Kafka's coordinator
//! (`GroupCoordinator.scala` 2.7): states Empty, PreparingRebalance, CompletingRebalance,
//! Stable; a join waits until every known member rejoined (or the rebalance timeout passed);
//! the leader's SyncGroup carries the assignments. Member ids start with a zero-padded counter
//! (`m00000001733...-client`), so they sort by join order: every assignor gives the one
//! partition to the first member id, which is the oldest member, and the others stand by.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use changetrack::{Consumer, ConsumerOptions, Login, StartAt, Store};

use crate::wire::assigned_partitions;

/// A connection's number.
pub(crate) type ConnId = u64;

/// A Kafka client: its address and `client.id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Identity {
    pub ip: IpAddr,
    pub client_id: String,
}

/// Kafka error codes the groups answer with.
pub(crate) mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// What the group needs from the server to take a lease.
pub(crate) struct LeaseContext<'a> {
    pub store: &'a Store,
    pub login: &'a Login,
    pub session_timeout: Duration,
}

struct Holder {
    consumer: Consumer,
    identity: Identity,
    /// The connection that receives records (`None` until the client's first Fetch, when the
    /// lease was taken by a commit).
    fetch_conn: Option<ConnId>,
    last_active: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Empty,
    Preparing { deadline: Instant },
    Completing,
    Stable,
}

struct Member {
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Vec<u8>)>,
    last_seen: Instant,
    /// Rejoined in the current rebalance.
    joined: bool,
    /// Requests of this member waiting in JoinGroup or SyncGroup (it is alive meanwhile).
    waiting: u32,
    assignment: Vec<u8>,
}

/// The answer to a JoinGroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct JoinAnswer {
    pub error: i16,
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// For the leader: every member with its protocol metadata.
    pub members: Vec<(String, Vec<u8>)>,
}

impl JoinAnswer {
    fn error(error: i16, member_id: &str) -> Self {
        Self {
            error,
            generation: -1,
            member_id: member_id.to_owned(),
            ..Self::default()
        }
    }
}

/// A JoinGroup request.
pub(crate) struct JoinRequest {
    pub member_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Vec<u8>)>,
}

struct State {
    holder: Option<Holder>,
    /// No lease attempt before this (a library consumer holds it: do not hammer its files).
    next_acquire: Instant,
    /// Open connections per client (a lease taken by a commit ends with the client's last).
    conns: HashMap<Identity, usize>,
    phase: Phase,
    generation: i32,
    protocol: String,
    leader: String,
    members: BTreeMap<String, Member>,
    answers: HashMap<String, JoinAnswer>,
    /// The member that holds partition 0 in the stable generation.
    owner: Option<String>,
}

/// One group's state, shared by the connections of that group.
pub(crate) struct Group {
    topic: String,
    state: Mutex<State>,
    cond: Condvar,
}

static MEMBER_COUNTER: AtomicU64 = AtomicU64::new(0);

fn new_member_id(client_id: &str) -> String {
    // Seeded from the clock so that ids keep sorting by join order across restarts.
    let _ = MEMBER_COUNTER.compare_exchange(
        0,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1)),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let n = MEMBER_COUNTER.fetch_add(1, Ordering::SeqCst);
    let client: String = client_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(48)
        .collect();
    format!("m{n:020}-{client}")
}

impl Group {
    pub(crate) fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            state: Mutex::new(State {
                holder: None,
                next_acquire: Instant::now(),
                conns: HashMap::new(),
                phase: Phase::Empty,
                generation: 0,
                protocol: String::new(),
                leader: String::new(),
                members: BTreeMap::new(),
                answers: HashMap::new(),
                owner: None,
            }),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was at the panic; the state
        // stays usable (every change is complete before any call that could panic).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ------------------------------------------------------------------ connections, lease

    pub(crate) fn connection_opened(&self, identity: &Identity) {
        *self.lock().conns.entry(identity.clone()).or_insert(0) += 1;
    }

    pub(crate) fn connection_closed(&self, conn: ConnId, identity: &Identity) {
        let mut st = self.lock();
        let last = match st.conns.get_mut(identity) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                st.conns.remove(identity);
                true
            }
        };
        let release = st.holder.as_ref().is_some_and(|h| {
            h.fetch_conn == Some(conn)
                || (last && h.fetch_conn.is_none() && h.identity == *identity)
        });
        if release {
            tracing::debug!(conn, "the connection holding the group's lease closed");
            st.holder = None;
        }
    }

    /// Whether connection `conn` may receive records now (taking the lease when it is free).
    pub(crate) fn may_fetch(
        &self,
        conn: ConnId,
        identity: &Identity,
        ctx: &LeaseContext<'_>,
    ) -> bool {
        let mut st = self.lock();
        let now = Instant::now();
        if let Some(h) = st.holder.as_mut() {
            if h.fetch_conn == Some(conn) {
                h.last_active = now;
                return true;
            }
            if h.fetch_conn.is_none() && h.identity == *identity {
                h.fetch_conn = Some(conn);
                h.last_active = now;
                return true;
            }
            if now.duration_since(h.last_active) < ctx.session_timeout {
                return false;
            }
            tracing::info!(
                conn,
                "the consumer holding the group went silent; taking over"
            );
            st.holder = None;
        }
        acquire(&mut st, conn_holder(Some(conn), identity), ctx, now, false)
    }

    /// Marks the connection's fetch as still active (after a long poll).
    pub(crate) fn touch(&self, conn: ConnId) {
        let mut st = self.lock();
        if let Some(h) = st.holder.as_mut().filter(|h| h.fetch_conn == Some(conn)) {
            h.last_active = Instant::now();
        }
    }

    /// Commits for `identity` through the lease (taking it when free). `Err` is the Kafka
    /// error code to answer.
    pub(crate) fn commit(
        &self,
        identity: &Identity,
        ctx: &LeaseContext<'_>,
        next_seq: u64,
        metadata: &[u8],
    ) -> Result<(), i16> {
        let mut st = self.lock();
        let now = Instant::now();
        let mine = st.holder.as_ref().map(|h| {
            (
                h.identity == *identity,
                now.duration_since(h.last_active) >= ctx.session_timeout,
            )
        });
        match mine {
            Some((true, _)) => {}
            Some((false, true)) => {
                st.holder = None;
                if !acquire(&mut st, conn_holder(None, identity), ctx, now, true) {
                    return Err(code::UNKNOWN_MEMBER_ID);
                }
            }
            Some((false, false)) => return Err(code::UNKNOWN_MEMBER_ID),
            None => {
                if !acquire(&mut st, conn_holder(None, identity), ctx, now, true) {
                    return Err(code::UNKNOWN_MEMBER_ID);
                }
            }
        }
        let Some(h) = st.holder.as_mut() else {
            return Err(code::UNKNOWN_MEMBER_ID);
        };
        h.last_active = now;
        match h.consumer.commit_next(next_seq, metadata) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(group = %ctx.login.group().id, "commit of offset {next_seq} refused: {e}");
                use changetrack::ErrorKind as K;
                Err(match e.kind() {
                    K::OutOfRange => code::OFFSET_OUT_OF_RANGE,
                    K::LimitExceeded => code::OFFSET_METADATA_TOO_LARGE,
                    K::Busy => {
                        st.holder = None;
                        code::UNKNOWN_MEMBER_ID
                    }
                    K::NotFound => code::GROUP_AUTHORIZATION_FAILED,
                    K::Io | K::Corruption => code::KAFKA_STORAGE_ERROR,
                    _ => code::UNKNOWN_SERVER_ERROR,
                })
            }
        }
    }

    /// Drops a lease that nobody used for `session_timeout` (so that a library standby may
    /// take the group), expires silent members and completes overdue rebalances.
    pub(crate) fn sweep(&self, session_timeout: Duration) {
        let mut st = self.lock();
        let now = Instant::now();
        if st
            .holder
            .as_ref()
            .is_some_and(|h| now.duration_since(h.last_active) >= session_timeout)
        {
            tracing::info!("releasing an idle group lease");
            st.holder = None;
        }
        if self.expire(&mut st, now) | self.try_complete_join(&mut st, now) {
            self.cond.notify_all();
        }
    }

    /// Whether the group has members (subscribe mode).
    pub(crate) fn has_members(&self) -> bool {
        !self.lock().members.is_empty()
    }

    // ------------------------------------------------------------------ members

    /// Checks a member's request: `Ok` when the member and generation are current (the member
    /// is marked alive), else the error code. `commit` applies the commit rules: accepted
    /// while a rebalance is being prepared, refused while it completes.
    pub(crate) fn check_member(
        &self,
        member_id: &str,
        generation: i32,
        commit: bool,
    ) -> Result<(), i16> {
        let mut st = self.lock();
        let phase = st.phase;
        let current = st.generation;
        let Some(m) = st.members.get_mut(member_id) else {
            return Err(code::UNKNOWN_MEMBER_ID);
        };
        m.last_seen = Instant::now();
        if generation != current {
            return Err(code::ILLEGAL_GENERATION);
        }
        match phase {
            Phase::Empty => Err(code::UNKNOWN_MEMBER_ID),
            Phase::Preparing { .. } if !commit => Err(code::REBALANCE_IN_PROGRESS),
            Phase::Completing if commit => Err(code::REBALANCE_IN_PROGRESS),
            _ => Ok(()),
        }
    }

    /// JoinGroup: waits until the rebalance completes (or fails at once).
    pub(crate) fn join(
        &self,
        identity: &Identity,
        req: JoinRequest,
        (min_session, max_session): (Duration, Duration),
        stop: &dyn Fn() -> bool,
    ) -> JoinAnswer {
        if req.session_timeout < min_session || req.session_timeout > max_session {
            return JoinAnswer::error(code::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return JoinAnswer::error(code::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
        }
        let mut st = self.lock();
        let now = Instant::now();
        if !st.members.is_empty() {
            let compatible = st.members.values().all(|m| {
                m.protocol_type == req.protocol_type
                    && m.protocols
                        .iter()
                        .any(|(p, _)| req.protocols.iter().any(|(q, _)| p == q))
            });
            if !compatible && !st.members.contains_key(&req.member_id) {
                return JoinAnswer::error(code::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
            }
        }
        let member_id = if req.member_id.is_empty() {
            let id = new_member_id(&identity.client_id);
            st.members.insert(
                id.clone(),
                Member {
                    session_timeout: req.session_timeout,
                    rebalance_timeout: req.rebalance_timeout,
                    protocol_type: req.protocol_type,
                    protocols: req.protocols,
                    last_seen: now,
                    joined: false,
                    waiting: 0,
                    assignment: Vec::new(),
                },
            );
            tracing::info!(member = %id, "member joined");
            self.prepare_rebalance(&mut st, now);
            id
        } else {
            let phase = st.phase;
            let leader = st.leader.clone();
            let Some(m) = st.members.get_mut(&req.member_id) else {
                return JoinAnswer::error(code::UNKNOWN_MEMBER_ID, &req.member_id);
            };
            let same = m.protocols == req.protocols;
            m.last_seen = now;
            m.session_timeout = req.session_timeout;
            m.rebalance_timeout = req.rebalance_timeout;
            m.protocols = req.protocols;
            match phase {
                Phase::Stable | Phase::Completing if same && leader != req.member_id => {
                    // Nothing changed: the current generation stands.
                    return JoinAnswer {
                        error: code::NONE,
                        generation: st.generation,
                        protocol: st.protocol.clone(),
                        leader,
                        member_id: req.member_id,
                        members: Vec::new(),
                    };
                }
                Phase::Preparing { .. } => {}
                _ => self.prepare_rebalance(&mut st, now),
            }
            req.member_id
        };
        if let Some(m) = st.members.get_mut(&member_id) {
            m.joined = true;
            m.waiting += 1;
        }
        self.try_complete_join(&mut st, now);
        self.cond.notify_all();
        let answer = loop {
            if let Some(a) = st.answers.remove(&member_id) {
                break a;
            }
            if !st.members.contains_key(&member_id) || stop() {
                break JoinAnswer::error(code::UNKNOWN_MEMBER_ID, &member_id);
            }
            st = self
                .cond
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            let now = Instant::now();
            if self.expire(&mut st, now) | self.try_complete_join(&mut st, now) {
                self.cond.notify_all();
            }
        };
        if let Some(m) = st.members.get_mut(&member_id) {
            m.waiting = m.waiting.saturating_sub(1);
            m.last_seen = Instant::now();
        }
        answer
    }

    /// SyncGroup: the leader's call stores the assignments; the others wait for it.
    pub(crate) fn sync(
        &self,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Vec<u8>)>,
        stop: &dyn Fn() -> bool,
    ) -> (i16, Vec<u8>) {
        let mut st = self.lock();
        let Some(m) = st.members.get_mut(member_id) else {
            return (code::UNKNOWN_MEMBER_ID, Vec::new());
        };
        m.last_seen = Instant::now();
        if generation != st.generation {
            return (code::ILLEGAL_GENERATION, Vec::new());
        }
        match st.phase {
            Phase::Empty => return (code::UNKNOWN_MEMBER_ID, Vec::new()),
            Phase::Preparing { .. } => return (code::REBALANCE_IN_PROGRESS, Vec::new()),
            Phase::Stable => {
                let a = st.members.get(member_id).map(|m| m.assignment.clone());
                return (code::NONE, a.unwrap_or_default());
            }
            Phase::Completing => {}
        }
        if st.leader == member_id {
            for m in st.members.values_mut() {
                m.assignment.clear();
            }
            for (id, a) in assignments {
                if let Some(m) = st.members.get_mut(&id) {
                    m.assignment = a;
                }
            }
            st.phase = Phase::Stable;
            let owner = st
                .members
                .iter()
                .find(|(_, m)| {
                    assigned_partitions(&m.assignment, &self.topic).is_some_and(|p| p.contains(&0))
                })
                .map(|(id, _)| id.clone());
            if owner != st.owner {
                tracing::info!(?owner, generation, "partition 0 assigned");
                // The lease follows the partition: the new owner's first Fetch takes it.
                st.holder = None;
                st.owner = owner;
            }
            self.cond.notify_all();
        }
        if let Some(m) = st.members.get_mut(member_id) {
            m.waiting += 1;
        }
        let result = loop {
            match (st.phase, st.members.get(member_id)) {
                (_, None) => break (code::UNKNOWN_MEMBER_ID, Vec::new()),
                (Phase::Stable, Some(m)) if st.generation == generation => {
                    break (code::NONE, m.assignment.clone())
                }
                (Phase::Completing, _) if st.generation == generation && !stop() => {}
                _ => break (code::REBALANCE_IN_PROGRESS, Vec::new()),
            }
            st = self
                .cond
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            let now = Instant::now();
            if self.expire(&mut st, now) {
                self.cond.notify_all();
            }
        };
        if let Some(m) = st.members.get_mut(member_id) {
            m.waiting = m.waiting.saturating_sub(1);
            m.last_seen = Instant::now();
        }
        result
    }

    /// LeaveGroup.
    pub(crate) fn leave(&self, member_id: &str) -> i16 {
        let mut st = self.lock();
        if st.members.remove(member_id).is_none() {
            return code::UNKNOWN_MEMBER_ID;
        }
        tracing::info!(member = %member_id, "member left");
        let now = Instant::now();
        self.prepare_rebalance(&mut st, now);
        self.try_complete_join(&mut st, now);
        self.cond.notify_all();
        code::NONE
    }

    fn prepare_rebalance(&self, st: &mut State, now: Instant) {
        if st.members.is_empty() {
            self.become_empty(st);
            return;
        }
        if let Phase::Preparing { .. } = st.phase {
            return;
        }
        let timeout = st
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60));
        st.phase = Phase::Preparing {
            deadline: now + timeout,
        };
        // Every member rejoins (the one whose JoinGroup started this is marked by its caller).
        for m in st.members.values_mut() {
            m.joined = false;
        }
        tracing::debug!(generation = st.generation, "rebalance prepared");
    }

    fn become_empty(&self, st: &mut State) {
        if st.phase != Phase::Empty {
            st.generation += 1;
        }
        st.phase = Phase::Empty;
        st.leader.clear();
        st.protocol.clear();
        if st.owner.take().is_some() {
            st.holder = None;
        }
    }

    /// Removes members whose session expired (not while they wait in a join or sync).
    fn expire(&self, st: &mut State, now: Instant) -> bool {
        let gone: Vec<String> = st
            .members
            .iter()
            .filter(|(_, m)| m.waiting == 0 && now.duration_since(m.last_seen) >= m.session_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        if gone.is_empty() {
            return false;
        }
        for id in &gone {
            tracing::info!(member = %id, "member session expired");
            st.members.remove(id);
        }
        self.prepare_rebalance(st, now);
        self.try_complete_join(st, now);
        true
    }

    /// Completes the join phase when every member rejoined or the deadline passed.
    fn try_complete_join(&self, st: &mut State, now: Instant) -> bool {
        let Phase::Preparing { deadline } = st.phase else {
            return false;
        };
        let all = st.members.values().all(|m| m.joined);
        if !all && now < deadline {
            return false;
        }
        st.members.retain(|id, m| {
            if !m.joined {
                tracing::info!(member = %id, "member did not rejoin in time");
            }
            m.joined
        });
        if st.members.is_empty() {
            self.become_empty(st);
            return true;
        }
        st.generation += 1;
        if !st.members.contains_key(&st.leader) {
            st.leader = st.members.keys().next().cloned().unwrap_or_default();
        }
        // The first protocol, in the leader's order, that every member supports.
        let leader = &st.members[&st.leader];
        st.protocol = leader
            .protocols
            .iter()
            .map(|(p, _)| p)
            .find(|p| {
                st.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(q, _)| q == *p))
            })
            .cloned()
            .unwrap_or_default();
        let protocol = st.protocol.clone();
        let members: Vec<(String, Vec<u8>)> = st
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(p, _)| *p == protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), meta)
            })
            .collect();
        st.answers.clear();
        for id in st.members.keys() {
            st.answers.insert(
                id.clone(),
                JoinAnswer {
                    error: code::NONE,
                    generation: st.generation,
                    protocol: protocol.clone(),
                    leader: st.leader.clone(),
                    member_id: id.clone(),
                    members: if *id == st.leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                },
            );
        }
        for m in st.members.values_mut() {
            m.joined = false;
            m.last_seen = now;
        }
        st.phase = Phase::Completing;
        tracing::info!(
            generation = st.generation,
            members = st.members.len(),
            leader = %st.leader,
            "rebalance: members joined"
        );
        true
    }
}

fn conn_holder(fetch_conn: Option<ConnId>, identity: &Identity) -> (Option<ConnId>, Identity) {
    (fetch_conn, identity.clone())
}

/// Takes the group's store lease for a client (without waiting: a library consumer may hold
/// it). `force` ignores the back-off between attempts.
fn acquire(
    st: &mut State,
    (fetch_conn, identity): (Option<ConnId>, Identity),
    ctx: &LeaseContext<'_>,
    now: Instant,
    force: bool,
) -> bool {
    if !force && now < st.next_acquire {
        return false;
    }
    let opts = ConsumerOptions {
        start: StartAt::Latest,
        wait: false,
        session_timeout: ctx.session_timeout,
        ..ConsumerOptions::default()
    };
    match Consumer::open_login(ctx.store, ctx.login, &opts) {
        Ok(consumer) => {
            tracing::info!(group = %ctx.login.group().id, client = %identity.client_id, peer = %identity.ip, "a Kafka client holds the group");
            st.holder = Some(Holder {
                consumer,
                identity,
                fetch_conn,
                last_active: now,
            });
            true
        }
        Err(e) => {
            if e.kind() != changetrack::ErrorKind::Busy {
                tracing::warn!(group = %ctx.login.group().id, "cannot take the group's lease: {e}");
            }
            st.next_acquire = now + Duration::from_millis(100);
            false
        }
    }
}
