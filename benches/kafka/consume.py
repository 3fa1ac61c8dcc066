#!/usr/bin/env python3
"""Reads partition 0 of a topic from the beginning to its end with confluent-kafka (assign mode,
batches of 10000 through Consumer.consume) and prints `records bytes seconds` (the time from the
assignment to the last record; connecting and authenticating excluded).

usage: consume.py BOOTSTRAP TOPIC USER PASSWORD GROUP_ID
"""
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING


def main():
    bootstrap, topic, user, password, group = sys.argv[1:6]
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group,
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": user, "sasl.password": password,
        "enable.auto.commit": False, "enable.partition.eof": True,
    })
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    n = 0
    size = 0
    t0 = time.monotonic()
    done = False
    while not done:
        for m in c.consume(num_messages=10000, timeout=5):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if m.offset() >= high:
                        done = True
                    continue
                sys.exit(f"error: {m.error()}")
            n += 1
            size += len(m.value())
            if m.offset() + 1 >= high:
                done = True
        if time.monotonic() - t0 > 600:
            sys.exit("gave up after 600 s")
    t = time.monotonic() - t0
    c.close()
    print(n, size, f"{t:.3f}")


if __name__ == "__main__":
    main()
