#!/usr/bin/env python3
"""Append-to-client latency of the Kafka endpoint (benches/kafka_fetch.sh latency).

  latency.py prepare SRC_BINLOG DIR
      Writes DIR/<name of SRC_BINLOG> with the file's events before its first transaction
      (magic, format description, GTID list...): what `ingest --follow DIR` starts on.
  latency.py run SRC_BINLOG DIR STORE BOOTSTRAP TOPIC USER PASSWORD GROUP RATE SECONDS
      Appends SRC_BINLOG's transactions (a MariaDB GTID event up to the next one) to that file,
      RATE per second for SECONDS, while
        - a thread spins on STORE/changetrack.tail (the writer's last committed seq) and notes
          when each seq became committed,
        - a confluent-kafka consumer (assign mode, from the end) notes when each record reached
          it;
      then prints p50/p99 of commit -> client for every record, and of binlog write -> client
      for each transaction's COMMIT record.
"""
import io
import json
import os
import struct
import sys
import threading
import time

GTID = 162


def events(data):
    at = 4
    while at + 19 <= len(data):
        size = struct.unpack_from("<I", data, at + 9)[0]
        yield at, data[at + 4], size
        at += size


def split(data):
    """(prefix, [transaction bytes])."""
    starts = [at for at, t, _ in events(data) if t == GTID]
    if not starts:
        sys.exit("no GTID events: not a MariaDB binlog")
    prefix = data[: starts[0]]
    txns = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    return prefix, txns


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    cmd = sys.argv[1]
    src = sys.argv[2]
    data = open(src, "rb").read()
    prefix, txns = split(data)
    name = os.path.join(sys.argv[3], os.path.basename(src))
    if cmd == "prepare":
        with open(name, "wb") as f:
            f.write(prefix)
        return
    store, bootstrap, topic, user, password, group = sys.argv[4:10]
    rate, seconds = float(sys.argv[10]), float(sys.argv[11])
    from confluent_kafka import Consumer, TopicPartition, OFFSET_END
    import fastavro

    here = os.path.dirname(os.path.abspath(__file__))
    named = {}
    for t in json.load(open(os.path.join(here, "..", "..", "core", "src", "record", "Record.avsc"))):
        schema = fastavro.parse_schema(t, named_schemas=named)

    # The spinner runs in its own process (a thread would fight the consumer for the GIL) and
    # sleeps 100 us between reads, so it costs little CPU; it notes when each seq was committed.
    import multiprocessing as mp

    def spin(path, stop_flag, out):
        fd = os.open(path, os.O_RDONLY)
        last = 0
        seen = []
        while not stop_flag.is_set():
            b = os.pread(fd, 8, 0)
            if len(b) == 8:
                s = struct.unpack("<Q", b)[0]
                if s > last:
                    seen.append((last + 1, s, time.time_ns()))
                    last = s
            time.sleep(0.0001)
        out.put(seen)

    stop_flag = mp.Event()
    out = mp.Queue()
    spinner = mp.Process(target=spin, args=(os.path.join(store, "changetrack.tail"), stop_flag, out))
    spinner.start()
    stop = threading.Event()

    got = {}  # offset -> (ns, op)
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group,
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": user, "sasl.password": password, "enable.auto.commit": False,
        "fetch.wait.max.ms": 500,
    })
    c.assign([TopicPartition(topic, 0, OFFSET_END)])
    # Wait until the consumer is positioned at the end (an empty poll after assignment).
    for _ in range(20):
        c.poll(0.2)

    def consume():
        while not stop.is_set():
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            now = time.time_ns()
            r = fastavro.schemaless_reader(io.BytesIO(m.value()), schema)
            got[m.offset()] = (now, r["operation"])

    threads = [threading.Thread(target=consume, daemon=True)]
    for t in threads:
        t.start()
    written = []  # ns per transaction
    n = int(rate * seconds)
    t0 = time.monotonic()
    with open(name, "ab", buffering=0) as f:
        for i, tx in enumerate(txns[:n]):
            due = t0 + i / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, min(0.001, due - time.monotonic())))
            f.write(tx)
            written.append(time.time_ns())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        commits_of_ours = sum(1 for _, op in got.values() if op == "COMMIT")
        if commits_of_ours >= len(written):
            break
        time.sleep(0.1)
    stop.set()
    stop_flag.set()
    commits = {}
    for lo, hi, ns in out.get(timeout=30):
        for q in range(lo, hi + 1):
            commits[q] = ns
    spinner.join()
    for t in threads:
        t.join()
    c.close()
    lat = [(ns - commits[o]) / 1e6 for o, (ns, _) in got.items() if o in commits]
    commit_records = sorted(o for o, (_, op) in got.items() if op == "COMMIT")
    e2e = [(got[o][0] - w) / 1e6 for o, w in zip(commit_records, written)]
    if not lat or not e2e:
        sys.exit("no records were received")
    print()
    print("| path | p50 | p99 | max | samples |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| store commit -> client (every record) | {pct(lat, 50):.2f} ms | {pct(lat, 99):.2f} ms | {max(lat):.2f} ms | {len(lat)} |")
    print(f"| binlog write -> client (COMMIT records) | {pct(e2e, 50):.2f} ms | {pct(e2e, 99):.2f} ms | {max(e2e):.2f} ms | {len(e2e)} |")
    print(f"({len(written)} transactions at {rate:g}/s appended by the writer; ingest --follow; serve; confluent-kafka)")


if __name__ == "__main__":
    main()
