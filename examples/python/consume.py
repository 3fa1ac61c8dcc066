#!/usr/bin/env python3
"""Consume a changetrack store from Python through the C API (ctypes), decoding each record's
DTS Avro bytes with fastavro: any runtime with a C FFI and an Avro library can be a consumer.

    python3 examples/python/consume.py STORE_DIR [GROUP_NAME]

Creates the group (user `python`, password from CHANGETRACK_PASSWORD, default `Python_pass1`)
if it does not exist, reads every record after the group's committed position, commits, and
prints one JSON line per record: seq, checkpoint, op and the Avro objectName and
sourceTimestamp. libchangetrack.so is taken from CHANGETRACK_LIB, else from the cargo target
directory.
"""
import ctypes
import io
import json
import os
import sys

import fastavro

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CT_OK, CT_END, CT_ALREADY_EXISTS = 0, 1, 17
OPS = ["INSERT", "UPDATE", "DELETE", "DDL", "BEGIN", "COMMIT", "HEARTBEAT"]


def load_library():
    path = os.environ.get("CHANGETRACK_LIB")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        path = os.path.join(target, "debug", "libchangetrack.so")
    lib = ctypes.CDLL(path)
    c = ctypes
    p = c.c_void_p
    lib.ct_version.restype = c.c_char_p
    lib.ct_last_error_message.argtypes = [c.c_char_p, c.c_size_t]
    lib.ct_last_error_message.restype = c.c_size_t
    lib.ct_store_open_readonly.argtypes = [c.c_char_p, c.POINTER(p)]
    lib.ct_store_free.argtypes = [p]
    lib.ct_group_create.argtypes = [p, c.c_char_p, c.c_char_p, c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_size_t)]
    lib.ct_group_list.argtypes = [p, c.c_char_p, c.c_size_t, c.POINTER(c.c_size_t)]
    lib.ct_consumer_open.argtypes = [p, c.c_char_p, c.c_char_p, c.c_char_p, c.POINTER(p)]
    lib.ct_consumer_next.argtypes = [p, c.c_uint32, c.POINTER(p)]
    lib.ct_consumer_commit.argtypes = [p, p]
    lib.ct_consumer_free.argtypes = [p]
    lib.ct_record_avro.argtypes = [p, c.POINTER(c.POINTER(c.c_uint8)), c.POINTER(c.c_size_t)]
    lib.ct_record_seq.argtypes = [p, c.POINTER(c.c_uint64)]
    lib.ct_record_op.argtypes = [p, c.POINTER(c.c_int)]
    lib.ct_record_checkpoint.argtypes = [p, c.c_char_p, c.c_size_t, c.POINTER(c.c_size_t)]
    for f in ("ct_store_open_readonly", "ct_group_create", "ct_group_list", "ct_consumer_open",
              "ct_consumer_next", "ct_consumer_commit", "ct_record_avro", "ct_record_seq",
              "ct_record_op", "ct_record_checkpoint"):
        getattr(lib, f).restype = c.c_int
    return lib


def check(lib, result, what):
    if result != CT_OK:
        buf = ctypes.create_string_buffer(1024)
        lib.ct_last_error_message(buf, len(buf))
        raise RuntimeError(f"{what}: error {result}: {buf.value.decode()}")


def text(lib, fn, *args):
    size = ctypes.c_size_t(0)
    check(lib, fn(*args, None, 0, ctypes.byref(size)), fn.__name__)
    buf = ctypes.create_string_buffer(size.value + 1)
    check(lib, fn(*args, buf, len(buf), ctypes.byref(size)), fn.__name__)
    return buf.value.decode()


def main():
    store_dir = sys.argv[1]
    group = sys.argv[2] if len(sys.argv) > 2 else "python-example"
    password = os.environ.get("CHANGETRACK_PASSWORD", "Python_pass1").encode()
    # Record.avsc is a list of named types, `Record` last: parse them in order.
    named = {}
    with open(os.path.join(ROOT, "core", "src", "record", "Record.avsc")) as f:
        for t in json.load(f):
            schema = fastavro.parse_schema(t, named_schemas=named)
    lib = load_library()
    store = ctypes.c_void_p()
    check(lib, lib.ct_store_open_readonly(store_dir.encode(), ctypes.byref(store)), "open")
    groups = [json.loads(l) for l in text(lib, lib.ct_group_list, store).splitlines()]
    found = [g["id"] for g in groups if g["name"] == group]
    if found:
        gid = found[0].encode()
    else:
        buf = ctypes.create_string_buffer(32)
        n = ctypes.c_size_t(0)
        check(lib, lib.ct_group_create(store, group.encode(), b"python", password, buf, len(buf), ctypes.byref(n)), "group")
        gid = buf.value
    consumer = ctypes.c_void_p()
    check(lib, lib.ct_consumer_open(store, gid, b"python", password, ctypes.byref(consumer)), "consumer")
    record = ctypes.c_void_p()
    last = None
    while True:
        r = lib.ct_consumer_next(consumer, 500, ctypes.byref(record))
        if r == CT_END:
            break
        check(lib, r, "next")
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t(0)
        check(lib, lib.ct_record_avro(record, ctypes.byref(data), ctypes.byref(size)), "avro")
        avro = fastavro.schemaless_reader(io.BytesIO(ctypes.string_at(data, size.value)), schema)
        seq = ctypes.c_uint64(0)
        op = ctypes.c_int(0)
        check(lib, lib.ct_record_seq(record, ctypes.byref(seq)), "seq")
        check(lib, lib.ct_record_op(record, ctypes.byref(op)), "op")
        print(json.dumps({
            "seq": seq.value,
            "checkpoint": text(lib, lib.ct_record_checkpoint, record),
            "op": OPS[op.value],
            "objectName": avro["objectName"],
            "sourceTimestamp": avro["sourceTimestamp"],
        }))
        last = ctypes.c_void_p(record.value)
        check(lib, lib.ct_consumer_commit(consumer, last), "commit")
    lib.ct_consumer_free(consumer)
    lib.ct_store_free(store)


if __name__ == "__main__":
    main()
