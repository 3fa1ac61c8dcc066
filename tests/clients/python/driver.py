#!/usr/bin/env python3
"""Kafka consumer driver for the changetrack client tests (see ../README.md for the contract).

    driver.py confluent|kafka-python-2.0.2|kafka-python-3 consume --bootstrap HOST:PORT --topic T
              --user U --group G [--mode assign|subscribe] [--start ...] [--until-end]
              [--max-records N] [--run-seconds S] [--commit] [--client-id ID]
              [--session-timeout-ms MS] [--no-sasl]

Run it through run.sh, which puts the right library on PYTHONPATH. One JSON object per line on
standard output; diagnostics on standard error. CT_KAFKA_PASSWORD holds the SASL password.
CT_DRIVER_DEBUG=1 turns on the libraries' protocol logging on standard error (kafka-python:
logging at DEBUG, every request and its version; confluent-kafka: debug=protocol,broker,...).
"""

import argparse
import base64
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

EXIT_OK, EXIT_OTHER, EXIT_AUTH, EXIT_GROUP_AUTH, EXIT_NO_OFFSET = 0, 1, 3, 4, 5
AUTH_DEADLINE_S = 30.0  # the contract: authentication failures are reported within 30 s
DEFAULT_GIVE_UP_S = 120.0  # without --run-seconds the driver gives up after this
REQUEST_TIMEOUT_S = 20.0  # a single blocking library call (offsets, committed, commit)
POLL_TIMEOUT_S = 0.5
CLIENTS = ("confluent", "kafka-python-2.0.2", "kafka-python-3")


# ---------------------------------------------------------------------------------------------
# output


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("driver: %s\n" % msg)
    sys.stderr.flush()


def b64(data):
    if data is None:
        return None
    return base64.b64encode(bytes(data)).decode("ascii")


class DriverExit(BaseException):
    """Stop the driver: print an error event (unless kind is None) and exit with code.
    A BaseException, so that no `except Exception` (ours or a library's) swallows it."""

    def __init__(self, code, kind=None, message=""):
        super().__init__(message)
        self.code, self.kind, self.message = code, kind, message


def fail(kind, message):
    code = {"auth": EXIT_AUTH, "group_auth": EXIT_GROUP_AUTH}.get(kind, EXIT_OTHER)
    return DriverExit(code, kind, message)


def die_now(kind, message):
    """For library callbacks that run deep inside a blocking library call (logging handlers,
    librdkafka callbacks): report and leave at once, without unwinding through the library."""
    code = {"auth": EXIT_AUTH, "group_auth": EXIT_GROUP_AUTH}.get(kind, EXIT_OTHER)
    emit({"event": "error", "kind": kind, "message": message})
    sys.stderr.flush()
    os._exit(code)


# ---------------------------------------------------------------------------------------------
# command line


def parse_start(value):
    if value in ("earliest", "latest", "committed"):
        return (value, None)
    for prefix, kind in (("time-s:", "time-s"), ("time-ms:", "time-ms"), ("offset:", "offset")):
        if value.startswith(prefix):
            try:
                return (kind, int(value[len(prefix):]))
            except ValueError:
                break
    raise argparse.ArgumentTypeError("bad --start %r" % value)


def parse_args(argv):
    if len(argv) < 2 or argv[0] not in CLIENTS or argv[1] != "consume":
        sys.stderr.write("usage: driver.py %s consume --bootstrap HOST:PORT --topic NAME "
                         "--user USER --group GROUP_ID [options]\n" % "|".join(CLIENTS))
        sys.exit(2)
    p = argparse.ArgumentParser(prog="driver.py %s consume" % argv[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--mode", choices=("assign", "subscribe"), default="assign")
    p.add_argument("--start", type=parse_start, default=("committed", None))
    p.add_argument("--until-end", action="store_true")
    p.add_argument("--max-records", type=int)
    p.add_argument("--run-seconds", type=float)
    p.add_argument("--commit", action="store_true")
    p.add_argument("--client-id")
    p.add_argument("--session-timeout-ms", type=int)
    p.add_argument("--no-sasl", action="store_true")
    p.add_argument("--group-id", help="group.id to use instead of GROUP_ID (another group than the credentials')")
    args = p.parse_args(argv[2:])
    args.client = argv[0]
    args.username = "%s-%s" % (args.user, args.group)
    if args.group_id:
        # The credentials stay the group's; group.id is the other one.
        args.group = args.group_id
    args.password = os.environ.get("CT_KAFKA_PASSWORD", "")
    args.debug = os.environ.get("CT_DRIVER_DEBUG", "") not in ("", "0")
    return args


def bootstrap_reachable(bootstrap):
    """Plain TCP connect to the first bootstrap address: tells 'nothing listens' (other) from
    'the connection was closed during SASL' (auth) for kafka-python 2.0.2."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# the consume loop shared by both libraries


class Run:
    """State of one driver run: stop conditions, counters, the end offset."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.records = 0
        self.last = None  # (offset, timestamp_ms) of the last record read
        self.uncommitted = False  # records read since the last commit
        self.end_offset = None  # --until-end: end offset read when partition 0 was obtained
        self.holds_p0 = False

    def remaining(self):
        if self.args.max_records is None:
            return None
        return self.args.max_records - self.records

    def time_left(self):
        limit = self.args.run_seconds if self.args.run_seconds is not None else DEFAULT_GIVE_UP_S
        return limit - (time.monotonic() - self.t0)

    def check_time(self):
        """True when --run-seconds has passed (clean stop); raises after the default give-up."""
        if self.time_left() > 0:
            return False
        if self.args.run_seconds is not None:
            return True
        raise fail("other", "no stop condition reached within %d s (give-up limit)"
                   % DEFAULT_GIVE_UP_S)

    def record(self, offset, timestamp_ms, key, value):
        emit({"event": "record", "offset": offset, "timestamp_ms": timestamp_ms,
              "key": b64(key), "value": b64(value)})
        self.records += 1
        self.last = (offset, timestamp_ms)
        self.uncommitted = True

    def commit_point(self):
        """(offset, metadata) to commit: last record's offset + 1, its timestamp in seconds."""
        offset, ts_ms = self.last
        return offset + 1, str(ts_ms // 1000)

    def max_reached(self):
        r = self.remaining()
        return r is not None and r <= 0

    def end_reached(self, position):
        return (self.args.until_end and self.holds_p0 and self.end_offset is not None
                and position is not None and position >= self.end_offset)


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def run_confluent(args):
    from confluent_kafka import (Consumer, KafkaError, KafkaException, TopicPartition,
                                 OFFSET_BEGINNING, OFFSET_END)
    import confluent_kafka

    ver = confluent_kafka.version()
    log("confluent-kafka %s, librdkafka %s" % (ver[0] if isinstance(ver, tuple) else ver,
                                               confluent_kafka.libversion()[0]))
    run = Run(args)
    state = {"auth_error": None}

    AUTH_CODES = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
    GROUP_AUTH_CODES = {KafkaError.GROUP_AUTHORIZATION_FAILED}
    # Commit errors that only mean "the group is rebalancing": the next commit covers them.
    REBALANCE_CODES = {getattr(KafkaError, n) for n in (
        "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "_ASSIGNMENT_LOST",
        "_STATE", "_NO_OFFSET") if hasattr(KafkaError, n)}

    # Errors after which committed() is asked again (coordinator not known / not ready yet).
    RETRIABLE_CODES = {getattr(KafkaError, n) for n in (
        "_TIMED_OUT", "NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE",
        "COORDINATOR_LOAD_IN_PROGRESS", "_WAIT_COORD", "_TRANSPORT") if hasattr(KafkaError, n)}

    def classify(err):
        code = err.code()
        if code in AUTH_CODES:
            return "auth"
        if code in GROUP_AUTH_CODES:
            return "group_auth"
        return "other"

    def kafka_exc(exc, what):
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is None:
            return fail("other", "%s: %s" % (what, exc))
        if state["auth_error"] is not None and err.code() in (
                KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            return fail("auth", state["auth_error"])
        return fail(classify(err), "%s: %s" % (what, err.str()))

    def error_cb(err):
        kind = classify(err)
        if kind == "auth":
            state["auth_error"] = err.str()
        elif kind == "group_auth":
            state["group_auth_error"] = err.str()
        log("error_cb: %s (%s)" % (err.str(), err.name()))

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "check.crcs": True,
        "error_cb": error_cb,
        "auto.offset.reset": "earliest" if args.mode == "subscribe" else "error",
        "socket.timeout.ms": int(REQUEST_TIMEOUT_S * 1000),
    }
    if not args.no_sasl:
        conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                     "sasl.username": args.username, "sasl.password": args.password})
    if args.client_id:
        conf["client.id"] = args.client_id
    if args.session_timeout_ms is not None:
        conf["session.timeout.ms"] = args.session_timeout_ms
    if args.debug:
        conf["debug"] = "protocol,broker,security,cgrp,fetch,topic"
        stderr_logger = logging.getLogger("librdkafka")
        stderr_logger.addHandler(logging.StreamHandler(sys.stderr))
        stderr_logger.setLevel(logging.DEBUG)
        conf["logger"] = stderr_logger


    def check_errors():
        if state["auth_error"] is not None:
            raise fail("auth", state["auth_error"])
        if state.get("group_auth_error") is not None:
            raise fail("group_auth", state["group_auth_error"])

    def watermarks():
        try:
            return c.get_watermark_offsets(TopicPartition(args.topic, 0),
                                           timeout=REQUEST_TIMEOUT_S, cached=False)
        except KafkaException as e:
            raise kafka_exc(e, "get_watermark_offsets")

    def drain_errors(timeout):
        """Before assign/subscribe only (no record can arrive yet): serve the callbacks and
        take the error events librdkafka queues for the application, e.g. the group
        coordinator lookup failing with GROUP_AUTHORIZATION_FAILED."""
        m = c.poll(timeout)
        while m is not None:
            err = m.error()
            if err is not None:
                kind = classify(err)
                if kind != "other" or err.fatal():
                    raise fail(kind, "consumer error: %s" % err.str())
                log("consumer error: %s (%s)" % (err.str(), err.name()))
            m = c.poll(0)
        check_errors()

    def fetch_committed(before_assign):
        # committed() waits for the coordinator without reporting why it cannot be found (an
        # unauthorized group shows as a timeout): ask in short steps and look at the queued
        # errors in between (only possible before assign/subscribe, not inside on_assign).
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while True:
            step = 1.0 if before_assign else REQUEST_TIMEOUT_S
            err = None
            try:
                res = c.committed([TopicPartition(args.topic, 0)], timeout=step)
                tp = res[0]
                err = tp.error
            except KafkaException as e:
                err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
                if err is None:
                    raise kafka_exc(e, "committed")
            if err is None:
                if tp.offset < 0:
                    return None, tp.metadata
                return tp.offset, tp.metadata
            if err.code() not in RETRIABLE_CODES or time.monotonic() > deadline:
                if before_assign:
                    drain_errors(0.1)
                raise kafka_exc(KafkaException(err), "committed")
            log("committed: %s (retrying)" % err.str())
            if before_assign:
                drain_errors(0.2)
            else:
                time.sleep(0.2)

    def commit():
        offset, metadata = run.commit_point()
        try:
            res = c.commit(offsets=[TopicPartition(args.topic, 0, offset, metadata=metadata)],
                           asynchronous=False)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            if args.mode == "subscribe" and err is not None and err.code() in REBALANCE_CODES:
                log("commit of %d skipped during a rebalance: %s" % (offset, err.str()))
                return
            raise kafka_exc(e, "commit")
        for tp in res or []:
            if tp.error is not None:
                if args.mode == "subscribe" and tp.error.code() in REBALANCE_CODES:
                    log("commit of %d skipped during a rebalance: %s" % (offset, tp.error.str()))
                    return
                raise fail(classify(tp.error), "commit: %s" % tp.error.str())
        run.uncommitted = False
        emit({"event": "committed", "offset": offset, "metadata": metadata})

    # position of partition 0 when no record has been read since it was obtained
    pos = {"start": None}

    def on_assign(consumer, partitions):
        ids = sorted(p.partition for p in partitions)
        emit({"event": "assigned", "partitions": ids})
        run.holds_p0 = 0 in ids
        if run.holds_p0 and args.until_end:
            low, high = watermarks()
            run.end_offset = high
            committed, _ = fetch_committed(before_assign=False)
            pos["start"] = committed if committed is not None else low

    def on_revoke(consumer, partitions):
        run.holds_p0 = False
        pos["start"] = None

    c = Consumer(conf)
    try:
        # Wait for a working connection first, so that a SASL failure is reported promptly
        # instead of surfacing as a timeout of some later blocking call.
        deadline = time.monotonic() + AUTH_DEADLINE_S
        while True:
            drain_errors(0.1)  # serves error_cb, takes queued consumer errors
            try:
                md = c.list_topics(args.topic, timeout=1.0)
                t = md.topics.get(args.topic)
                if t is not None and t.error is None and 0 in t.partitions:
                    break
                log("metadata: topic %s not ready (%s)" % (args.topic, t and t.error))
            except KafkaException as e:
                log("metadata: %s" % e)
            if time.monotonic() > deadline:
                check_errors()
                raise fail("other", "no usable metadata for topic %s within %d s"
                           % (args.topic, AUTH_DEADLINE_S))
            time.sleep(0.2)

        if args.mode == "assign":
            kind, n = args.start
            if args.commit and kind != "committed":
                # A synchronous commit waits for the group coordinator with no time limit and
                # then fails with "waiting for coordinator", whatever the reason; find out first
                # whether the group can be used at all (one extra OffsetFetch).
                fetch_committed(before_assign=True)
            if kind == "earliest":
                start = OFFSET_BEGINNING
            elif kind == "latest":
                start = OFFSET_END
            elif kind == "committed":
                off, metadata = fetch_committed(before_assign=True)
                emit({"event": "fetched_commit", "offset": off,
                      "metadata": metadata if off is not None else None})
                start = off if off is not None else OFFSET_BEGINNING
            elif kind in ("time-s", "time-ms"):
                try:
                    res = c.offsets_for_times([TopicPartition(args.topic, 0, n)],
                                              timeout=REQUEST_TIMEOUT_S)
                except KafkaException as e:
                    raise kafka_exc(e, "offsets_for_times")
                tp = res[0]
                if tp.error is not None:
                    raise fail(classify(tp.error), "offsets_for_times: %s" % tp.error.str())
                if tp.offset < 0:  # librdkafka: -1 (OFFSET_END) = no such offset
                    emit({"event": "seek", "offset": None})
                    raise DriverExit(EXIT_NO_OFFSET)
                emit({"event": "seek", "offset": tp.offset})
                start = tp.offset
            else:
                start = n
            c.assign([TopicPartition(args.topic, 0, start)])
            run.holds_p0 = True
            if args.until_end or start in (OFFSET_BEGINNING, OFFSET_END):
                low, high = watermarks()
                run.end_offset = high
                pos["start"] = {OFFSET_BEGINNING: low, OFFSET_END: high}.get(start, start)
        else:
            c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)

        while True:
            check_errors()
            if run.max_reached() or run.check_time():
                break
            position = run.last[0] + 1 if (run.last is not None and pos["start"] is None) \
                else pos["start"]
            if run.end_reached(position):
                break
            n = run.remaining()
            msgs = c.consume(num_messages=min(500, n) if n is not None else 500,
                             timeout=max(0.05, min(POLL_TIMEOUT_S, run.time_left())))
            got = False
            for m in msgs:
                if m.error() is not None:
                    err = m.error()
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    kind = classify(err)
                    if kind == "other" and not err.fatal() and err.retriable():
                        log("consume: %s (retriable)" % err.str())
                        continue
                    raise fail(kind, "consume: %s" % err.str())
                if m.partition() != 0 or m.topic() != args.topic:
                    continue
                run.record(m.offset(), m.timestamp()[1], m.key(), m.value())
                pos["start"] = None  # from now on the position is last offset + 1
                got = True
            if got and args.commit:
                commit()
        if args.commit and run.last is not None:
            commit()
        emit({"event": "end", "records": run.records})
        return EXIT_OK
    finally:
        try:
            c.close()
        except Exception as e:  # pylint: disable=broad-except
            log("close: %s" % e)


# ---------------------------------------------------------------------------------------------
# kafka-python (2.0.2 and 3.x)


def _kafka_python_2_0_2_import_shim():
    """kafka-python 2.0.2 vendors six 1.11, whose `six.moves` importer only implements the
    find_module/load_module protocol that Python 3.12 removed ("No module named
    'kafka.vendor.six.moves'"). On Python >= 3.12 put a finder in front that forwards the
    modern find_spec/create_module protocol to it. Python 3.11 needs nothing (only an
    ImportWarning, hidden by default). The library files are not touched."""
    if sys.version_info < (3, 12):
        return
    import importlib.abc
    import importlib.util

    class SixMovesFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        six_importer = None

        def find_spec(self, fullname, path=None, target=None):
            if not fullname.startswith("kafka.vendor.six.moves"):
                return None
            for imp in sys.meta_path:
                if type(imp).__name__ == "_SixMetaPathImporter" and imp.find_module(fullname):
                    self.six_importer = imp
                    return importlib.util.spec_from_loader(fullname, self)
            return None

        def create_module(self, spec):
            return self.six_importer.load_module(spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, SixMovesFinder())


class _AuthLogWatch(logging.Handler):
    """Watches kafka-python's log for SASL failures, which the library mostly logs and retries
    instead of raising (2.0.2: the broker closes the connection during the raw PLAIN exchange;
    3.x: SaslAuthenticationFailedError, then reconnects with backoff)."""

    MARKERS = ("Error receiving reply from server",  # 2.0.2 _try_authenticate_plain
               "SaslAuthenticationFailedError", "Authentication failed",
               "Failed to authenticate via SASL", "AuthenticationFailedError")

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.auth_error = None

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # pylint: disable=broad-except
            return
        if record.levelno >= logging.INFO and any(m in msg for m in self.MARKERS):
            if self.auth_error is None:
                self.auth_error = msg.splitlines()[0]
                # The record is logged deep inside a blocking library call (or the heartbeat
                # thread), and the library would only retry: report and leave right here.
                die_now("auth", "SASL authentication failed: %s" % self.auth_error)


def run_kafka_python(args):
    if args.client == "kafka-python-2.0.2":
        _kafka_python_2_0_2_import_shim()
    import kafka
    import kafka.errors as Errors
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.structs import OffsetAndMetadata

    v3 = not kafka.__version__.startswith(("2.0.", "1.", "0."))
    want = "3." if args.client == "kafka-python-3" else "2.0.2"
    if not kafka.__version__.startswith(want):
        raise fail("other", "%s requested but kafka-python %s is on the path"
                   % (args.client, kafka.__version__))
    log("kafka-python %s (%s)" % (kafka.__version__, kafka.__file__))

    # Library logging: warnings to stderr (DEBUG with CT_DRIVER_DEBUG=1), and the SASL watcher.
    klog = logging.getLogger("kafka")
    klog.setLevel(logging.DEBUG if args.debug else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if args.debug else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: "in the clear" not in str(r.msg))
    klog.addHandler(handler)
    watch = _AuthLogWatch()
    klog.addHandler(watch)
    klog.propagate = False

    run = Run(args)
    tp0 = TopicPartition(args.topic, 0)
    n_fields = len(OffsetAndMetadata._fields)  # 2 in 2.0.x (offset, metadata); 3 from 2.1
    AUTH_ERRORS = tuple(getattr(Errors, n) for n in (
        "SaslAuthenticationFailedError", "AuthenticationFailedError") if hasattr(Errors, n))
    REBALANCE_ERRORS = tuple(getattr(Errors, n) for n in (
        "CommitFailedError", "RebalanceInProgressError", "IllegalGenerationError",
        "UnknownMemberIdError") if hasattr(Errors, n))

    def classify(exc):
        if isinstance(exc, AUTH_ERRORS):
            return "auth"
        if isinstance(exc, Errors.GroupAuthorizationFailedError):
            return "group_auth"
        if watch.auth_error is not None and isinstance(
                exc, (Errors.KafkaTimeoutError, Errors.NoBrokersAvailable,
                      Errors.KafkaConnectionError, Errors.NodeNotReadyError)):
            return "auth"
        return "other"

    def lib_fail(exc, what):
        kind = classify(exc)
        msg = "%s: %s: %s" % (what, type(exc).__name__, exc)
        if kind == "auth" and watch.auth_error and not isinstance(exc, AUTH_ERRORS):
            msg += " (%s)" % watch.auth_error
        return fail(kind, msg)

    def check_auth():
        if watch.auth_error is not None:
            raise fail("auth", watch.auth_error)

    conf = dict(
        bootstrap_servers=args.bootstrap.split(","),
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.mode == "subscribe" else "none",
        check_crcs=True,
    )
    if not args.no_sasl:
        conf.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                    sasl_plain_username=args.username, sasl_plain_password=args.password)
    if args.client_id:
        conf["client_id"] = args.client_id
    if args.session_timeout_ms is not None:
        conf["session_timeout_ms"] = args.session_timeout_ms
        conf["heartbeat_interval_ms"] = max(100, min(3000, args.session_timeout_ms // 3))
    timeout_kw = {"timeout_ms": int(REQUEST_TIMEOUT_S * 1000)} if v3 else {}
    if v3:
        # 3.x retries a failed bootstrap until bootstrap_timeout_ms (default 30 s), then raises
        # KafkaTimeoutError. It does not always see the broker's SASL error response: its
        # transport drops data that arrives together with the connection close (3.0.12
        # net/transport.py _sock_recv), so a wrong password can look like "socket disconnected"
        # only. Give up early enough to report the failure within 30 s.
        conf["bootstrap_timeout_ms"] = 20000
    BOOTSTRAP_ERRORS = tuple(getattr(Errors, n) for n in (
        "NoBrokersAvailable", "KafkaTimeoutError") if hasattr(Errors, n))

    state = {"consumer": None}
    deadline = time.monotonic() + AUTH_DEADLINE_S

    def construct():
        # 2.0.2 probes the broker version (api_version=None) in the constructor and raises
        # NoBrokersAvailable when the bootstrap connection fails, e.g. closed during SASL.
        # 3.x connects lazily and reconnects after a SASL failure with backoff.
        while True:
            try:
                return KafkaConsumer(**conf)
            except BOOTSTRAP_ERRORS as e:
                what = "%s: %s" % (type(e).__name__, e)
                if watch.auth_error is not None or (not args.no_sasl and
                                                    bootstrap_reachable(args.bootstrap)):
                    raise fail("auth", "%s: the broker accepts TCP connections but closed them "
                               "during SASL authentication (%s)" % (what, watch.auth_error or
                                                                    "no error response seen"))
                if v3 or time.monotonic() > deadline:  # 3.x already retried for 20 s
                    raise fail("other", what)
                time.sleep(1)
            except Exception as e:  # pylint: disable=broad-except
                raise lib_fail(e, "KafkaConsumer")

    c = construct()
    state["consumer"] = c
    try:
        # Wait for metadata with short steps, watching for SASL failures meanwhile.
        while True:
            check_auth()
            try:
                parts = c.partitions_for_topic(args.topic)
                if parts and 0 in parts:
                    break
            except Exception as e:  # pylint: disable=broad-except
                if classify(e) != "other":
                    raise lib_fail(e, "metadata")
                log("metadata: %s: %s" % (type(e).__name__, e))
            check_auth()
            if time.monotonic() > deadline:
                raise fail("other", "no metadata for topic %s within %d s"
                           % (args.topic, AUTH_DEADLINE_S))
            time.sleep(0.2)

        def call(what, fn, *a, **kw):
            try:
                return fn(*a, **kw)
            except DriverExit:
                raise
            except Exception as e:  # pylint: disable=broad-except
                raise lib_fail(e, what)

        def end_offset():
            return call("end_offsets", c.end_offsets, [tp0], **timeout_kw)[tp0]

        def fetch_committed():
            if v3:
                om = call("committed", c.committed, tp0, metadata=True, **timeout_kw)
                if om is None or om.offset is None or om.offset < 0:
                    return None, (om.metadata if om is not None else None)
                return om.offset, om.metadata
            # 2.0.2: committed(tp) returns the offset only; the coordinator call it wraps
            # returns OffsetAndMetadata(offset, metadata).
            res = call("committed", c._coordinator.fetch_committed_offsets, [tp0])
            om = res.get(tp0)
            if om is None or om.offset < 0:
                return None, (om.metadata if om is not None else None)
            return om.offset, om.metadata

        def commit():
            offset, metadata = run.commit_point()
            om = OffsetAndMetadata(offset, metadata) if n_fields == 2 \
                else OffsetAndMetadata(offset, metadata, -1)
            try:
                c.commit({tp0: om})
            except REBALANCE_ERRORS as e:
                if args.mode == "subscribe":
                    log("commit of %d skipped during a rebalance: %s: %s"
                        % (offset, type(e).__name__, e))
                    return
                raise lib_fail(e, "commit")
            except Exception as e:  # pylint: disable=broad-except
                raise lib_fail(e, "commit")
            run.uncommitted = False
            emit({"event": "committed", "offset": offset, "metadata": metadata})

        need_end = {"flag": False}

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                run.holds_p0 = False

            def on_partitions_assigned(self, assigned):
                ids = sorted(p.partition for p in assigned if p.topic == args.topic)
                emit({"event": "assigned", "partitions": ids})
                run.holds_p0 = 0 in ids
                # Read the end offset right after this poll (a nested blocking call inside
                # the rebalance callback is not safe in kafka-python 2.0.2).
                need_end["flag"] = run.holds_p0 and args.until_end

        if args.mode == "assign":
            c.assign([tp0])
            run.holds_p0 = True
            kind, n = args.start
            if kind == "earliest":
                c.seek_to_beginning(tp0)
            elif kind == "latest":
                c.seek_to_end(tp0)
            elif kind == "committed":
                off, metadata = fetch_committed()
                emit({"event": "fetched_commit", "offset": off,
                      "metadata": metadata if off is not None else None})
                if off is None:
                    c.seek_to_beginning(tp0)
                else:
                    c.seek(tp0, off)
            elif kind in ("time-s", "time-ms"):
                res = call("offsets_for_times", c.offsets_for_times, {tp0: n}, **timeout_kw)
                ot = res.get(tp0)
                if ot is None or ot.offset is None or ot.offset < 0:
                    emit({"event": "seek", "offset": None})
                    raise DriverExit(EXIT_NO_OFFSET)
                emit({"event": "seek", "offset": ot.offset})
                c.seek(tp0, ot.offset)
            else:
                c.seek(tp0, n)
            if args.until_end:
                run.end_offset = end_offset()
        else:
            c.subscribe(topics=[args.topic], listener=Listener())

        def position():
            if not run.holds_p0:
                return None
            return call("position", c.position, tp0, **timeout_kw)

        while True:
            check_auth()
            if need_end["flag"] and run.holds_p0:
                need_end["flag"] = False
                run.end_offset = end_offset()
            if run.max_reached() or run.check_time():
                break
            if args.until_end and run.end_offset is not None and run.end_reached(position()):
                break
            n = run.remaining()
            timeout_ms = int(max(0.05, min(POLL_TIMEOUT_S, run.time_left())) * 1000)
            try:
                batches = c.poll(timeout_ms=timeout_ms, max_records=n if n else None)
            except Exception as e:  # pylint: disable=broad-except
                raise lib_fail(e, "poll")
            got = False
            for tp, recs in batches.items():
                if tp != tp0:
                    continue
                for r in recs:
                    run.record(r.offset, r.timestamp, r.key, r.value)
                    got = True
            if got and args.commit:
                commit()
        if args.commit and run.last is not None:
            commit()
        emit({"event": "end", "records": run.records})
        return EXIT_OK
    finally:
        try:
            c.close(autocommit=False)
        except Exception as e:  # pylint: disable=broad-except
            log("close: %s" % e)


# ---------------------------------------------------------------------------------------------


def _on_sigterm(signum, frame):
    # Leave the group cleanly (the finally blocks close the consumer), no "end" event.
    raise DriverExit(128 + signum)


WATCHDOG_GRACE_S = 30.0  # hard exit this long after --run-seconds / the give-up limit


def _start_watchdog(args):
    """Never wait for ever, even when a library call blocks without a timeout."""
    limit = args.run_seconds if args.run_seconds is not None else DEFAULT_GIVE_UP_S
    t = threading.Timer(limit + WATCHDOG_GRACE_S, die_now, args=(
        "other", "watchdog: still running %d s after the time limit" % WATCHDOG_GRACE_S))
    t.daemon = True
    t.start()


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _start_watchdog(args)
    try:
        if args.client == "confluent":
            return run_confluent(args)
        return run_kafka_python(args)
    except DriverExit as e:
        if e.kind is not None:
            emit({"event": "error", "kind": e.kind, "message": e.message})
        return e.code
    except KeyboardInterrupt:
        emit({"event": "error", "kind": "other", "message": "interrupted"})
        return EXIT_OTHER
    except Exception as e:  # pylint: disable=broad-except
        import traceback
        traceback.print_exc()
        emit({"event": "error", "kind": "other", "message": "%s: %s" % (type(e).__name__, e)})
        return EXIT_OTHER


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
