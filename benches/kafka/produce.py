#!/usr/bin/env python3
"""Produces `changetrack dump --format avro` output (4-byte big-endian length + Avro value per
record) into a real Kafka broker's topic, partition 0, with each record's source time (read from
the Avro: sourceTimestamp, seconds) as its timestamp in ms. Prints the number of records.

usage: produce.py BOOTSTRAP TOPIC USER PASSWORD DUMP_FILE
"""
import struct
import sys

from confluent_kafka import Producer


def zigzag_long(buf, at):
    """Reads an Avro long at `at`: (value, next offset)."""
    shift = 0
    acc = 0
    while True:
        b = buf[at]
        at += 1
        acc |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    return (acc >> 1) ^ -(acc & 1), at


def source_ts(value):
    # Record: version (int), id (long), sourceTimestamp (long), ...
    _, at = zigzag_long(value, 0)
    _, at = zigzag_long(value, at)
    ts, _ = zigzag_long(value, at)
    return ts


def main():
    bootstrap, topic, user, password, path = sys.argv[1:6]
    p = Producer({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": user, "sasl.password": password,
        "linger.ms": 50, "batch.size": 1 << 20, "acks": "all",
        "queue.buffering.max.kbytes": 1 << 20, "compression.type": "none",
    })
    n = 0
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        (size,) = struct.unpack(">I", data[at:at + 4])
        value = data[at + 4:at + 4 + size]
        at += 4 + size
        while True:
            try:
                p.produce(topic, value=value, partition=0, timestamp=source_ts(value) * 1000)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left:
        sys.exit(f"{left} records not delivered")
    print(n)


if __name__ == "__main__":
    main()
