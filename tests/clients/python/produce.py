#!/usr/bin/env python3
"""Test-data producer for checking the drivers against a real Kafka broker (not part of the
driver contract): writes N records to partition 0 with chosen timestamps, key null.

    PYTHONPATH=$CACHE/python/confluent python3 produce.py --bootstrap H:P --topic T \
        [--sasl USER:PASSWORD] --count N --first-ts-ms MS [--step-ms STEP] [--value-prefix P]

($CACHE = ${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}, filled by setup.sh.)
Record i has timestamp first-ts-ms + i*step-ms and value "<prefix><i>" (UTF-8). kcat -P cannot
set record timestamps, hence this script.
"""
import argparse
import sys

from confluent_kafka import Producer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--sasl")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--first-ts-ms", type=int, required=True)
    p.add_argument("--step-ms", type=int, default=1000)
    p.add_argument("--value-prefix", default="value-")
    a = p.parse_args()
    conf = {"bootstrap.servers": a.bootstrap, "linger.ms": 5, "enable.idempotence": False,
            "acks": "all"}
    if a.sasl:
        user, _, password = a.sasl.partition(":")
        conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                     "sasl.username": user, "sasl.password": password})
    prod = Producer(conf)
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(a.count):
        prod.produce(a.topic, value=("%s%d" % (a.value_prefix, i)).encode(), partition=0,
                     timestamp=a.first_ts_ms + i * a.step_ms, on_delivery=done)
        prod.poll(0)
    left = prod.flush(30)
    if errors or left:
        sys.exit("produce failed: %s (%d not delivered)" % (errors[:3], left))
    print("produced %d records to %s" % (a.count, a.topic))


if __name__ == "__main__":
    main()
