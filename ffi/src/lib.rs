//! The C API of changetrack (`libchangetrack.so`, `libchangetrack.a`, `changetrack.h`).
//!
//! Conventions (every function):
//! - pointers are checked: NULL gives `CT_NULL_ARGUMENT` (the `*_free` functions accept NULL);
//! - panics are caught and give `CT_PANIC`;
//! - outputs are written only when the result is `CT_OK`;
//! - on an error, `ct_last_error_message` gives this thread's message;
//! - strings are UTF-8. Text outputs are copied into the caller's buffer with a terminating NUL
//!   and their length (without the NUL) in `*len_out`. Passing `buf = NULL, buf_len = 0` asks
//!   for the length only; a buffer shorter than length + 1 gives `CT_BUFFER_TOO_SMALL`.
//!
//! Thread safety: a `ct_store` may be used from several threads at once. A `ct_consumer`, and
//! the `ct_record`s it returns, belong to one thread at a time.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ct::query::{ChangeTypes, Condition, Query};
use ct::store::ReadFrom;
use ct::{
    CommitAt, Consumer, ConsumerOptions, Error, ErrorKind, IngestOptions, StartAt, Store,
    StoreOptions,
};

/// The result of every fallible function.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ct_result {
    /// Success.
    CT_OK = 0,
    /// Nothing more within the timeout (`ct_consumer_next`).
    CT_END = 1,
    /// An argument was invalid.
    CT_INVALID_ARGUMENT = 2,
    /// A file, group, record or position does not exist.
    CT_NOT_FOUND = 3,
    /// The input ends inside an event.
    CT_INCOMPLETE = 4,
    /// Malformed input or stored data.
    CT_CORRUPTION = 5,
    /// An unsupported format or event.
    CT_UNSUPPORTED = 6,
    /// Binlog and table metadata disagree.
    CT_SCHEMA_MISMATCH = 7,
    /// A position outside the stored range (the message states the range).
    CT_OUT_OF_RANGE = 8,
    /// An operating-system I/O error.
    CT_IO = 9,
    /// The store is open for writing elsewhere.
    CT_LOCKED = 10,
    /// The store refuses writes after a storage failure.
    CT_POISONED = 11,
    /// A size or count limit was exceeded.
    CT_LIMIT_EXCEEDED = 12,
    /// The binlog reports an incident.
    CT_INCIDENT = 13,
    /// A bug in changetrack.
    CT_INTERNAL = 14,
    /// Wrong group id, username or password.
    CT_UNAUTHORIZED = 15,
    /// Another consumer of the group is active, or this one was replaced.
    CT_BUSY = 16,
    /// A group with that name exists.
    CT_ALREADY_EXISTS = 17,
    /// A required pointer argument was NULL.
    CT_NULL_ARGUMENT = 18,
    /// The output buffer is too small (the message says how large it must be).
    CT_BUFFER_TOO_SMALL = 19,
    /// changetrack panicked (a bug); the handle should be freed.
    CT_PANIC = 20,
    /// A live source's precheck failed (the message lists each item and its fix).
    CT_PRECHECK_FAILED = 21,
}

/// The change type of a record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ct_op {
    /// INSERT
    CT_OP_INSERT = 0,
    /// UPDATE
    CT_OP_UPDATE = 1,
    /// DELETE
    CT_OP_DELETE = 2,
    /// DDL
    CT_OP_DDL = 3,
    /// BEGIN
    CT_OP_BEGIN = 4,
    /// COMMIT
    CT_OP_COMMIT = 5,
    /// HEARTBEAT
    CT_OP_HEARTBEAT = 6,
}

/// A store. Thread-safe.
pub struct ct_store {
    store: Store,
}

/// The active consumer of a group. One thread at a time.
pub struct ct_consumer {
    consumer: Consumer,
    current: Option<Box<ct_record>>,
}

/// A record returned by `ct_consumer_next`: borrowed, valid until the next `ct_consumer_next`
/// on the same consumer or until the consumer is freed.
pub struct ct_record {
    rec: ct::ChangeRecord,
    avro: Option<Vec<u8>>,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(msg: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

fn code(kind: ErrorKind) -> ct_result {
    match kind {
        ErrorKind::InvalidArgument => ct_result::CT_INVALID_ARGUMENT,
        ErrorKind::NotFound => ct_result::CT_NOT_FOUND,
        ErrorKind::Incomplete => ct_result::CT_INCOMPLETE,
        ErrorKind::Corruption => ct_result::CT_CORRUPTION,
        ErrorKind::Unsupported => ct_result::CT_UNSUPPORTED,
        ErrorKind::SchemaMismatch => ct_result::CT_SCHEMA_MISMATCH,
        ErrorKind::OutOfRange => ct_result::CT_OUT_OF_RANGE,
        ErrorKind::Io => ct_result::CT_IO,
        ErrorKind::Locked => ct_result::CT_LOCKED,
        ErrorKind::Poisoned => ct_result::CT_POISONED,
        ErrorKind::LimitExceeded => ct_result::CT_LIMIT_EXCEEDED,
        ErrorKind::Incident => ct_result::CT_INCIDENT,
        ErrorKind::Unauthorized => ct_result::CT_UNAUTHORIZED,
        ErrorKind::Busy => ct_result::CT_BUSY,
        ErrorKind::AlreadyExists => ct_result::CT_ALREADY_EXISTS,
        ErrorKind::PrecheckFailed => ct_result::CT_PRECHECK_FAILED,
        _ => ct_result::CT_INTERNAL,
    }
}

/// A failure inside a call: a result code and its message.
struct Fail(ct_result, String);

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail(code(e.kind()), e.to_string())
    }
}

fn null(what: &str) -> Fail {
    Fail(ct_result::CT_NULL_ARGUMENT, format!("{what} is NULL"))
}

/// Runs `f`, catching panics, recording the message of a failure.
fn guard(f: impl FnOnce() -> Result<ct_result, Fail>) -> ct_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(Fail(r, msg))) => {
            set_error(msg);
            r
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            set_error(format!("changetrack panicked: {msg}"));
            ct_result::CT_PANIC
        }
    }
}

unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: the caller passes a NUL-terminated string (checked non-NULL above).
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| {
        Fail(
            ct_result::CT_INVALID_ARGUMENT,
            format!("{what} is not UTF-8"),
        )
    })
}

unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Fail> {
    // SAFETY: non-NULL checked; the caller passes a valid, writable pointer.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

unsafe fn arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, Fail> {
    // SAFETY: non-NULL checked; the caller passes a pointer this library returned.
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// Copies `bytes` + NUL into `buf`, or answers the length (see the conventions).
unsafe fn copy_out(
    bytes: &[u8],
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> Result<ct_result, Fail> {
    let len_out = unsafe { out(len_out, "len_out") }?;
    if buf.is_null() {
        if buf_len == 0 {
            *len_out = bytes.len();
            return Ok(ct_result::CT_OK);
        }
        return Err(null("buf"));
    }
    if buf_len < bytes.len() + 1 {
        return Err(Fail(
            ct_result::CT_BUFFER_TOO_SMALL,
            format!(
                "the buffer has {buf_len} bytes; {} are needed",
                bytes.len() + 1
            ),
        ));
    }
    // SAFETY: `buf` holds at least `bytes.len() + 1` writable bytes (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    *len_out = bytes.len();
    Ok(ct_result::CT_OK)
}

/// The library version, e.g. "0.1.0" (static; never NULL).
#[no_mangle]
pub extern "C" fn ct_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Copies this thread's last error message into `buf` (truncated to `buf_len - 1` bytes, NUL
/// terminated) and returns its full length. `buf` may be NULL to ask for the length.
#[no_mangle]
pub unsafe extern "C" fn ct_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        if !buf.is_null() && buf_len > 0 {
            let n = e.len().min(buf_len - 1);
            // SAFETY: `buf` holds `buf_len` writable bytes and `n < buf_len`.
            unsafe {
                std::ptr::copy_nonoverlapping(e.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        e.len()
    })
}

fn open_store(path: &str, read_only: bool) -> Result<Store, Fail> {
    Ok(Store::open(
        path,
        StoreOptions {
            read_only,
            ..StoreOptions::default()
        },
    )?)
}

/// Opens (creating if needed) the store in directory `path` for writing.
#[no_mangle]
pub unsafe extern "C" fn ct_store_open(
    path: *const c_char,
    store_out: *mut *mut ct_store,
) -> ct_result {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        let store_out = unsafe { out(store_out, "store_out") }?;
        let store = open_store(path, false)?;
        *store_out = Box::into_raw(Box::new(ct_store { store }));
        Ok(ct_result::CT_OK)
    })
}

/// Opens the store in `path` for reading only, following a writer in another process.
#[no_mangle]
pub unsafe extern "C" fn ct_store_open_readonly(
    path: *const c_char,
    store_out: *mut *mut ct_store,
) -> ct_result {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        let store_out = unsafe { out(store_out, "store_out") }?;
        let store = open_store(path, true)?;
        store.refresh()?;
        *store_out = Box::into_raw(Box::new(ct_store { store }));
        Ok(ct_result::CT_OK)
    })
}

/// Closes a store. NULL is a no-op. Consumers of it must be freed first.
#[no_mangle]
pub unsafe extern "C" fn ct_store_free(store: *mut ct_store) {
    if !store.is_null() {
        // SAFETY: a pointer from ct_store_open*, freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// Ingests binlog files or directories (resuming after what the store holds).
#[no_mangle]
pub unsafe extern "C" fn ct_store_ingest_files(
    store: *mut ct_store,
    paths: *const *const c_char,
    n_paths: usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        if paths.is_null() {
            return Err(null("paths"));
        }
        let mut v = Vec::with_capacity(n_paths);
        for i in 0..n_paths {
            // SAFETY: `paths` holds `n_paths` pointers.
            let p = unsafe { *paths.add(i) };
            v.push(std::path::PathBuf::from(unsafe { str_arg(p, "paths[i]") }?));
        }
        ct::ingest(
            &store.store,
            &v,
            &IngestOptions::default(),
            None,
            &mut |_| {},
        )?;
        Ok(ct_result::CT_OK)
    })
}

/// The store's data range as one JSON object
/// (`{"oldest":{"seq":..,"checkpoint":"..","timestamp":..},"newest":{..}}`, nulls when empty).
#[no_mangle]
pub unsafe extern "C" fn ct_store_data_range(
    store: *const ct_store,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        store.store.refresh()?;
        let end = |e: &ct::store::RangeEnd| serde_json::json!({"seq": e.seq, "checkpoint": e.checkpoint.to_string(), "timestamp": e.timestamp});
        let v = match store.store.data_range()? {
            Some(r) => serde_json::json!({"oldest": end(&r.oldest), "newest": end(&r.newest)}),
            None => serde_json::json!({"oldest": null, "newest": null}),
        };
        unsafe { copy_out(v.to_string().as_bytes(), buf, buf_len, len_out) }
    })
}

/// Creates a consumer group; writes its id (NUL-terminated) into `id_buf`.
#[no_mangle]
pub unsafe extern "C" fn ct_group_create(
    store: *mut ct_store,
    name: *const c_char,
    username: *const c_char,
    password: *const c_char,
    id_buf: *mut c_char,
    id_buf_len: usize,
    id_len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let user = unsafe { str_arg(username, "username") }?;
        let pw = unsafe { str_arg(password, "password") }?;
        if id_len_out.is_null() {
            return Err(null("id_len_out"));
        }
        if id_buf.is_null() || id_buf_len < 21 {
            // Checked before creating, so a failed call creates nothing.
            return Err(if id_buf.is_null() {
                null("id_buf")
            } else {
                Fail(
                    ct_result::CT_BUFFER_TOO_SMALL,
                    format!("id_buf has {id_buf_len} bytes; group ids need 21"),
                )
            });
        }
        let id = store.store.groups()?.create(name, user, pw)?;
        unsafe { copy_out(id.as_bytes(), id_buf, id_buf_len, id_len_out) }
    })
}

/// The groups as JSON lines: id, name, username, committed checkpoint/seq/timestamp,
/// remaining records, delay in seconds.
#[no_mangle]
pub unsafe extern "C" fn ct_group_list(
    store: *const ct_store,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        store.store.refresh()?;
        let mut text = String::new();
        for g in store.store.groups()?.status_all(&store.store)? {
            let v = serde_json::json!({
                "id": g.info.id, "name": g.info.name, "username": g.info.username,
                "committed_seq": g.committed.map(|c| c.seq),
                "committed_checkpoint": g.committed.map(|c| c.checkpoint.to_string()),
                "committed_timestamp": g.committed.map(|c| c.timestamp),
                "remaining": g.remaining, "delay_seconds": g.delay_seconds,
                "damaged": g.damaged,
            });
            text.push_str(&v.to_string());
            text.push('\n');
        }
        unsafe { copy_out(text.as_bytes(), buf, buf_len, len_out) }
    })
}

/// Deletes a group and its committed position for good.
#[no_mangle]
pub unsafe extern "C" fn ct_group_delete(
    store: *mut ct_store,
    group_id: *const c_char,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let id = unsafe { str_arg(group_id, "group_id") }?;
        store.store.groups()?.delete(id)?;
        Ok(ct_result::CT_OK)
    })
}

/// Changes a group's password (the old one must match).
#[no_mangle]
pub unsafe extern "C" fn ct_group_change_password(
    store: *mut ct_store,
    group_id: *const c_char,
    old_password: *const c_char,
    new_password: *const c_char,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let id = unsafe { str_arg(group_id, "group_id") }?;
        let old = unsafe { str_arg(old_password, "old_password") }?;
        let new = unsafe { str_arg(new_password, "new_password") }?;
        store.store.groups()?.change_password(id, old, new)?;
        Ok(ct_result::CT_OK)
    })
}

/// Opens the group's consumer, starting after its committed position. Fails with `CT_BUSY`
/// when another consumer of the group is active (it does not wait).
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_open(
    store: *mut ct_store,
    group_id: *const c_char,
    username: *const c_char,
    password: *const c_char,
    consumer_out: *mut *mut ct_consumer,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let id = unsafe { str_arg(group_id, "group_id") }?;
        let user = unsafe { str_arg(username, "username") }?;
        let pw = unsafe { str_arg(password, "password") }?;
        let consumer_out = unsafe { out(consumer_out, "consumer_out") }?;
        let consumer = Consumer::open(
            &store.store,
            id,
            user,
            pw,
            &ConsumerOptions {
                wait: false,
                ..ConsumerOptions::default()
            },
        )?;
        *consumer_out = Box::into_raw(Box::new(ct_consumer {
            consumer,
            current: None,
        }));
        Ok(ct_result::CT_OK)
    })
}

/// Waits up to `timeout_ms` for the next record. `CT_OK`: `*record_out` is borrowed until the
/// next call on this consumer or `ct_consumer_free`. `CT_END`: nothing arrived in time.
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_next(
    consumer: *mut ct_consumer,
    timeout_ms: u32,
    record_out: *mut *const ct_record,
) -> ct_result {
    guard(|| {
        let c = unsafe { out(consumer, "consumer") }?;
        let record_out = unsafe { out(record_out, "record_out") }?;
        c.current = None;
        match c
            .consumer
            .poll(Duration::from_millis(u64::from(timeout_ms)))?
        {
            Some(rec) => {
                let boxed = c.current.insert(Box::new(ct_record { rec, avro: None }));
                *record_out = &raw const **boxed;
                Ok(ct_result::CT_OK)
            }
            None => Ok(ct_result::CT_END),
        }
    })
}

/// Commits: everything up to and including `record` was consumed (durable on return).
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_commit(
    consumer: *mut ct_consumer,
    record: *const ct_record,
) -> ct_result {
    guard(|| {
        let c = unsafe { out(consumer, "consumer") }?;
        let r = unsafe { arg(record, "record") }?;
        c.consumer.commit(CommitAt::Record(&r.rec))?;
        Ok(ct_result::CT_OK)
    })
}

/// Moves the read position to the first record at or after `timestamp` (epoch seconds).
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_seek_timestamp(
    consumer: *mut ct_consumer,
    timestamp: u32,
) -> ct_result {
    guard(|| {
        let c = unsafe { out(consumer, "consumer") }?;
        c.current = None;
        c.consumer.seek(StartAt::Timestamp(timestamp))?;
        Ok(ct_result::CT_OK)
    })
}

/// Moves the read position to the first record at or after `checkpoint` ("OFFSET@FILE_INDEX").
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_seek_checkpoint(
    consumer: *mut ct_consumer,
    checkpoint: *const c_char,
) -> ct_result {
    guard(|| {
        let c = unsafe { out(consumer, "consumer") }?;
        let cp = unsafe { str_arg(checkpoint, "checkpoint") }?.parse::<ct::Checkpoint>()?;
        c.current = None;
        c.consumer.seek(StartAt::Checkpoint(cp))?;
        Ok(ct_result::CT_OK)
    })
}

/// Releases the group to a standby at once. NULL is a no-op. Records it returned become invalid.
#[no_mangle]
pub unsafe extern "C" fn ct_consumer_free(consumer: *mut ct_consumer) {
    if !consumer.is_null() {
        // SAFETY: a pointer from ct_consumer_open, freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(consumer) })
        }));
    }
}

/// The record as DTS Avro bytes (a single-object body for `Record.avsc`), borrowed like the
/// record.
#[no_mangle]
pub unsafe extern "C" fn ct_record_avro(
    record: *const ct_record,
    data_out: *mut *const u8,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = record.cast_mut();
        // SAFETY: a record from ct_consumer_next; its lazily built Avro bytes live in it.
        let r = unsafe { r.as_mut() }.ok_or_else(|| null("record"))?;
        let data_out = unsafe { out(data_out, "data_out") }?;
        let len_out = unsafe { out(len_out, "len_out") }?;
        let bytes = r.avro.get_or_insert_with(|| {
            let mut v = Vec::new();
            ct::record::avro::write_record(&mut v, &r.rec);
            v
        });
        *data_out = bytes.as_ptr();
        *len_out = bytes.len();
        Ok(ct_result::CT_OK)
    })
}

/// The record's checkpoint, "OFFSET@FILE_INDEX".
#[no_mangle]
pub unsafe extern "C" fn ct_record_checkpoint(
    record: *const ct_record,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        unsafe {
            copy_out(
                r.rec.checkpoint.to_string().as_bytes(),
                buf,
                buf_len,
                len_out,
            )
        }
    })
}

/// The record's sequence number in the store.
#[no_mangle]
pub unsafe extern "C" fn ct_record_seq(record: *const ct_record, seq_out: *mut u64) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        *unsafe { out(seq_out, "seq_out") }? = r.rec.seq;
        Ok(ct_result::CT_OK)
    })
}

/// The record's timestamp (epoch seconds).
#[no_mangle]
pub unsafe extern "C" fn ct_record_timestamp(
    record: *const ct_record,
    timestamp_out: *mut u32,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        *unsafe { out(timestamp_out, "timestamp_out") }? = r.rec.timestamp;
        Ok(ct_result::CT_OK)
    })
}

/// The record's change type.
#[no_mangle]
pub unsafe extern "C" fn ct_record_op(record: *const ct_record, op_out: *mut ct_op) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        *unsafe { out(op_out, "op_out") }? = match r.rec.op {
            ct::Op::Insert => ct_op::CT_OP_INSERT,
            ct::Op::Update => ct_op::CT_OP_UPDATE,
            ct::Op::Delete => ct_op::CT_OP_DELETE,
            ct::Op::Ddl => ct_op::CT_OP_DDL,
            ct::Op::Begin => ct_op::CT_OP_BEGIN,
            ct::Op::Commit => ct_op::CT_OP_COMMIT,
            ct::Op::Heartbeat => ct_op::CT_OP_HEARTBEAT,
        };
        Ok(ct_result::CT_OK)
    })
}

/// The record's database (empty when it has none).
#[no_mangle]
pub unsafe extern "C" fn ct_record_database(
    record: *const ct_record,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let d = r.rec.database_name().unwrap_or("");
        unsafe { copy_out(d.as_bytes(), buf, buf_len, len_out) }
    })
}

/// The record's table (empty when it has none).
#[no_mangle]
pub unsafe extern "C" fn ct_record_table(
    record: *const ct_record,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let t = r.rec.table_name().unwrap_or("");
        unsafe { copy_out(t.as_bytes(), buf, buf_len, len_out) }
    })
}

/// The number of fields (columns) of a row record (0 for DDL and markers).
#[no_mangle]
pub unsafe extern "C" fn ct_record_field_count(
    record: *const ct_record,
    count_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        *unsafe { out(count_out, "count_out") }? =
            r.rec.table.as_ref().map_or(0, |t| t.fields.len());
        Ok(ct_result::CT_OK)
    })
}

fn field(r: &ct_record, i: usize) -> Result<&ct::Field, Fail> {
    r.rec
        .table
        .as_ref()
        .and_then(|t| t.fields.get(i))
        .ok_or_else(|| {
            Fail(
                ct_result::CT_NOT_FOUND,
                format!("the record has no field {i}"),
            )
        })
}

/// The name of field `i`.
#[no_mangle]
pub unsafe extern "C" fn ct_record_field_name(
    record: *const ct_record,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let f = field(r, index)?;
        unsafe { copy_out(f.name.as_bytes(), buf, buf_len, len_out) }
    })
}

/// The MySQL type code of field `i` (DTS `dataTypeNumber`).
#[no_mangle]
pub unsafe extern "C" fn ct_record_field_type(
    record: *const ct_record,
    index: usize,
    type_out: *mut u8,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let f = field(r, index)?;
        *unsafe { out(type_out, "type_out") }? = f.type_code;
        Ok(ct_result::CT_OK)
    })
}

/// The character set of field `i` (empty for non-string columns or when unknown).
#[no_mangle]
pub unsafe extern "C" fn ct_record_field_charset(
    record: *const ct_record,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let f = field(r, index)?;
        unsafe { copy_out(f.charset.unwrap_or("").as_bytes(), buf, buf_len, len_out) }
    })
}

/// The value of field `i` in the pre-image (`after == 0`) or post-image (`after != 0`):
/// as text (numbers, dates, strings) or raw bytes (binary columns). `*is_null_out` is 1 for
/// SQL NULL, a missing image or a column missing from the image (then the text is empty).
#[no_mangle]
pub unsafe extern "C" fn ct_record_field_value(
    record: *const ct_record,
    index: usize,
    after: i32,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
    is_null_out: *mut i32,
) -> ct_result {
    guard(|| {
        let r = unsafe { arg(record, "record") }?;
        let f = field(r, index)?;
        if is_null_out.is_null() {
            return Err(null("is_null_out"));
        }
        let img = if after != 0 {
            r.rec.after.as_ref()
        } else {
            r.rec.before.as_ref()
        };
        let v = img.and_then(|vals| vals.get(index));
        let bytes: Option<Vec<u8>> = match v {
            Some(ct::Value::Bytes(b))
                if matches!(f.kind, ct::ColumnKind::Binary | ct::ColumnKind::Blob) =>
            {
                Some(b.to_vec())
            }
            Some(v) => ct::query::value_text(v, f).map(|s| s.into_owned().into_bytes()),
            None => None,
        };
        let res = unsafe { copy_out(bytes.as_deref().unwrap_or_default(), buf, buf_len, len_out) }?;
        // SAFETY: checked non-NULL above.
        unsafe { *is_null_out = i32::from(bytes.is_none()) };
        Ok(res)
    })
}

/// Runs a query and writes its records as JSON lines (the `dump` contract, with `seq`).
/// `query_json`: `{"database":..,"table":..,"where":["col op value",..],"types":"INSERT,..",
/// "from_time":..,"to_time":..,"limit":..,"oldest_first":..,"cursor":..}`, every key optional
/// (defaults as `changetrack query`).
#[no_mangle]
pub unsafe extern "C" fn ct_query(
    store: *const ct_store,
    query_json: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let text = unsafe { str_arg(query_json, "query_json") }?;
        let bad = |e: String| Fail(ct_result::CT_INVALID_ARGUMENT, format!("query_json: {e}"));
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        let mut q = Query {
            database: s("database"),
            table: s("table"),
            oldest_first: v
                .get("oldest_first")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            cursor: s("cursor"),
            ..Query::default()
        };
        if let Some(w) = v.get("where").and_then(serde_json::Value::as_array) {
            for c in w {
                let c = c
                    .as_str()
                    .ok_or_else(|| bad("where holds strings".into()))?;
                q.conditions.push(c.parse::<Condition>()?);
            }
        }
        if let Some(t) = s("types") {
            q.types = t.parse::<ChangeTypes>()?;
        }
        q.from_time = n("from_time").map(|x| u32::try_from(x).unwrap_or(u32::MAX));
        q.to_time = n("to_time").map(|x| u32::try_from(x).unwrap_or(u32::MAX));
        if let Some(l) = n("limit") {
            q.limit = usize::try_from(l).unwrap_or(usize::MAX);
        }
        store.store.refresh()?;
        let page = store.store.query(&q)?;
        let mut out_text = String::new();
        for r in &page.records {
            ct::record::json::push_record(&mut out_text, r, true);
            out_text.push('\n');
        }
        unsafe { copy_out(out_text.as_bytes(), buf, buf_len, len_out) }
    })
}

/// Reads a record by seq into a JSON line (for tools; records of a consumer are better read
/// through its accessors).
#[no_mangle]
pub unsafe extern "C" fn ct_store_get_json(
    store: *const ct_store,
    seq: u64,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> ct_result {
    guard(|| {
        let store = unsafe { arg(store, "store") }?;
        let r = store
            .store
            .iter(ReadFrom::Seq(seq))?
            .next()
            .transpose()?
            .filter(|r| r.seq == seq)
            .ok_or_else(|| Fail(ct_result::CT_NOT_FOUND, format!("no record {seq}")))?;
        let text = ct::record::json::to_json(&r, true);
        unsafe { copy_out(text.as_bytes(), buf, buf_len, len_out) }
    })
}
