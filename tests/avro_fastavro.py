#!/usr/bin/env python3
"""DTS Avro read by fastavro, checked against the JSON-lines output of the same binlogs.

For every binlog of tests/data/binlogs that decodes without error (exit code 0), runs
`changetrack decode --format avro FILE` and `--format jsonl FILE`, splits the Avro stream
(4-byte big-endian length, then one record), reads each record with fastavro's
schemaless_reader using core/src/record/Record.avsc (named types parsed in order, read with the
`Record` type itself, not the union of all types), and checks it against the matching JSON line.

Runs under pytest (test_fastavro_matches_jsonl) or as a script (exit status 1 on failure).
The binary: $CHANGETRACK_BIN, else release or debug `changetrack` under $CARGO_TARGET_DIR,
~/.cache/changetrack-target or ./target. Requires `pip install fastavro`.
"""

import base64
import io
import json
import os
import struct
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import fastavro
from fastavro.schema import parse_schema

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "binlogs"
SCHEMA = ROOT / "core" / "src" / "record" / "Record.avsc"
SKIP_EXT = {".txt", ".tsv", ".sql", ".md", ".sh"}
MAX_SHOWN = 40
# `type` strings of BinaryObject/TextObject that existing readers accept.
OBJECT_TYPES = {
    "BINARY", "BOOL", "BLOB", "XML", "JSON", "TEXT", "BFILE", "RAW", "LONG_RAW", "ROWID",
    "UROWID", "ENUM", "SET", "BYTEA", "GEOMETRY", "XTYPE", "UUID",
}

# MySQL charset -> Python codec (matching the library's encoding_rs choices).
CODECS = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "ascii": "ascii",
    "latin1": "cp1252",
    "latin2": "iso8859-2",
    "latin7": "iso8859-13",
    "greek": "iso8859-7",
    "hebrew": "iso8859-8",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp866": "cp866",
    "koi8r": "koi8-r",
    "koi8u": "koi8-u",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "sjis": "cp932",
    "cp932": "cp932",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "cp949",
    "tis620": "cp874",
    "ucs2": "utf-16-be",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
}



def ddl_database(stmt):
    """The database a DDL statement names: `db` in `... TABLE db.t`, or the name in
    `CREATE|DROP|ALTER DATABASE|SCHEMA name`; None when it names none."""
    words = stmt.split()[:12]
    upper = [w.upper() for w in words]
    i = 0
    while i < len(upper) and upper[i] not in ("TABLE", "DATABASE", "SCHEMA"):
        if upper[0] == "TRUNCATE" and i == 0 and (len(upper) < 2 or upper[1] != "TABLE"):
            break
        i += 1
    is_db = i < len(upper) and upper[i] in ("DATABASE", "SCHEMA")
    j = i + 1
    while j < len(upper) and upper[j] in ("IF", "NOT", "EXISTS"):
        j += 1
    if j >= len(words):
        return None
    name = words[j].rstrip(";(")
    unquote = lambda s: s.strip("`").replace("``", "`")
    if is_db:
        return unquote(name)
    if "." in name:
        d, t = name.split(".", 1)
        if d and t:
            return unquote(d)
    return None

def find_binary():
    env = os.environ.get("CHANGETRACK_BIN")
    if env:
        return Path(env)
    dirs = []
    if os.environ.get("CARGO_TARGET_DIR"):
        dirs.append(Path(os.environ["CARGO_TARGET_DIR"]))
    dirs += [Path.home() / ".cache" / "changetrack-target", ROOT / "target"]
    for d in dirs:
        for profile in ("release", "debug"):
            p = d / profile / "changetrack"
            if p.is_file():
                return p
    raise SystemExit("changetrack binary not found: build it or set CHANGETRACK_BIN")


def load_record_schema():
    """Parses the named types in order and returns the parsed `Record` type."""
    types = json.loads(SCHEMA.read_text())
    named = {}
    parsed = None
    for t in types:
        parsed = parse_schema(t, named_schemas=named)
    assert types[-1]["name"] == "Record", "Record.avsc must end with Record"
    return parsed


def corpus_files():
    return sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in SKIP_EXT
    )


def split_frames(data):
    out, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise ValueError(f"truncated length prefix at byte {i}")
        (n,) = struct.unpack(">I", data[i : i + 4])
        i += 4
        if i + n > len(data):
            raise ValueError(f"truncated record at byte {i}: {n} bytes announced")
        out.append(data[i : i + n])
        i += n
    return out


def decode_text(raw, charset):
    """Mirrors the library's exact decoding: None when the bytes are not text in `charset`."""
    if charset is None:
        if all(b < 0x80 for b in raw) and 0 not in raw:
            return raw.decode("ascii")
        return None
    if charset == "binary":
        return None
    if charset not in ("ucs2", "utf16", "utf16le", "utf32") and all(b < 0x80 for b in raw):
        return raw.decode("ascii")
    codec = CODECS.get(charset)
    if codec is None:
        return None
    if codec == "cp1252":
        # WHATWG windows-1252: the five bytes cp1252 leaves undefined map to C1 controls.
        return "".join(
            chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252")
            for b in raw
        )
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return None


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


def utc_text(seconds, micros, fsp):
    if seconds == 0 and micros == 0:
        base = "0000-00-00 00:00:00"
    else:
        base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return base + frac(micros, fsp)


def frac(micros, fsp):
    return ("." + f"{micros:06d}"[:fsp]) if fsp else ""


def fsp_of(text):
    return len(text.split(".", 1)[1]) if "." in text else 0


class Checker:
    def __init__(self):
        self.failures = []
        self.total_failures = 0
        self.records = 0
        self.values = 0
        self.files = 0

    def fail(self, where, msg):
        self.total_failures += 1
        if len(self.failures) < MAX_SHOWN:
            self.failures.append(f"{where}: {msg}")

    def eq(self, where, what, got, want):
        if got != want:
            self.fail(where, f"{what}: avro {got!r} != json {want!r}")

    # -- one value ---------------------------------------------------------------------------

    def check_value(self, where, field, item, present, jv):
        """item: the fastavro-decoded union member, jv: the JSON value (present=False if absent)."""
        self.values += 1
        name, ftype, charset = field["name"], field["type"], field["charset"]
        if isinstance(item, tuple) and item[0].endswith(".EmptyObject"):
            item = item[1]  # the enum symbol, NULL or NONE
        if not present:
            # A column missing from a partial image: EmptyObject NONE, never NULL.
            if item != "NONE":
                self.fail(where, f"{name}: absent from JSON but avro has {item!r}, want NONE")
            return
        if item is None:
            if jv is not None:
                self.fail(where, f"{name}: avro null, json {jv!r}")
            return
        if item == "NONE" and isinstance(jv, dict) and "json_diff" in jv:
            # A partial JSON update without the document: the new value is not present.
            return
        if item == "NONE" or item == "NULL":
            self.fail(where, f"{name}: avro EmptyObject {item} for JSON value {jv!r}")
            return
        if not (isinstance(item, tuple) and len(item) == 2):
            self.fail(where, f"{name}: unexpected avro item {item!r}")
            return
        kind, item = item[0].rsplit(".", 1)[-1], item[1]
        if kind == "Integer":
            if isinstance(jv, bool) or not isinstance(jv, int):
                self.fail(where, f"{name}: avro Integer {item['value']!r}, json {jv!r}")
            elif item["value"] != str(jv):
                self.fail(where, f"{name}: Integer value {item['value']!r} != json {jv}")
            want_p = {1: 1, 2: 2, 9: 3, 3: 4, 8: 8}.get(ftype)
            if want_p is not None and item["precision"] != want_p:
                self.fail(where, f"{name}: Integer precision {item['precision']} for type {ftype}")
        elif kind == "Character":
            raw = item["value"]
            want_cs = {"utf8mb3": "utf8"}.get(charset, charset) if charset else "binary"
            if item["charset"] != want_cs:
                self.fail(where, f"{name}: Character charset {item['charset']!r}, field charset {charset!r}")
            if isinstance(jv, str):
                text = decode_text(raw, charset)
                if text is None:
                    # BINARY/VARBINARY (and undecodable text) are base64 in JSON.
                    if jv != b64(raw):
                        self.fail(where, f"{name}: Character bytes {raw!r} vs json base64 {jv!r}")
                elif text != jv:
                    self.fail(where, f"{name}: Character {raw!r} decodes ({charset}) to {text!r}, json {jv!r}")
            elif isinstance(jv, dict) and "base64" in jv:
                if base64.b64decode(jv["base64"]) != raw:
                    self.fail(where, f"{name}: Character bytes {raw!r} vs json {jv!r}")
            else:
                self.fail(where, f"{name}: Character for json {jv!r}")
        elif kind == "Decimal":
            if item["value"] != jv:
                self.fail(where, f"{name}: Decimal {item['value']!r} != json {jv!r}")
            if "e" in item["value"].lower():
                self.fail(where, f"{name}: Decimal {item['value']!r} in exponent form")
            scale = len(item["value"].split(".", 1)[1]) if "." in item["value"] else 0
            if item["scale"] != scale:
                self.fail(where, f"{name}: Decimal {item['value']!r} scale {item['scale']}")
        elif kind == "Float":
            if not isinstance(jv, (int, float)) or isinstance(jv, bool):
                self.fail(where, f"{name}: Float {item['value']!r}, json {jv!r}")
            elif ftype == 4:
                # FLOAT: the double must be the f32 the JSON shows.
                f32 = struct.unpack("<f", struct.pack("<f", item["value"]))[0]
                if f32 != struct.unpack("<f", struct.pack("<f", float(jv)))[0]:
                    self.fail(where, f"{name}: FLOAT {item['value']!r} != json {jv!r}")
            elif float(item["value"]) != float(jv):
                self.fail(where, f"{name}: DOUBLE {item['value']!r} != json {jv!r}")
        elif kind == "Timestamp":  # millis holds microseconds
            if not (0 <= item["millis"] <= 999_999):
                self.fail(where, f"{name}: Timestamp micros {item['millis']} out of range")
            if not isinstance(jv, str):
                self.fail(where, f"{name}: Timestamp for json {jv!r}")
            else:
                text = utc_text(item["timestamp"], item["millis"], fsp_of(jv))
                if text != jv:
                    self.fail(where, f"{name}: Timestamp {item} is {text!r}, json {jv!r}")
        elif kind == "DateTime":
            self.check_datetime(where, name, ftype, item, jv)
        elif kind in ("BinaryObject", "BinaryGeometry", "TextObject"):
            t, v = item["type"], item["value"]
            if kind == "BinaryGeometry" and t != "WKB":
                self.fail(where, f"{name}: BinaryGeometry type {t!r}")
            if kind != "BinaryGeometry" and t not in OBJECT_TYPES:
                self.fail(where, f"{name}: {kind} type {t!r} not accepted by existing readers")
            if isinstance(v, bytes):
                if t == "TEXT":
                    text = decode_text(v, charset)
                    if isinstance(jv, str):
                        if text != jv:
                            self.fail(where, f"{name}: TEXT {v!r} decodes to {text!r}, json {jv!r}")
                    elif not (isinstance(jv, dict) and base64.b64decode(jv.get("base64", "")) == v):
                        self.fail(where, f"{name}: TEXT {v!r}, json {jv!r}")
                elif t in ("BLOB", "WKB"):
                    if jv != b64(v):
                        self.fail(where, f"{name}: {t} bytes {v!r}, json {jv!r}")
                else:
                    self.fail(where, f"{name}: unexpected binary object type {t!r}")
            else:
                if t in ("ENUM", "SET", "JSON"):
                    want = jv if isinstance(jv, str) else json.dumps(jv)
                    if v != want:
                        self.fail(where, f"{name}: {t} {v!r}, json {jv!r}")
                else:
                    self.fail(where, f"{name}: unexpected text object type {t!r}")
        else:
            self.fail(where, f"{name}: unexpected union member {kind} {item!r}")

    def check_datetime(self, where, name, ftype, item, jv):
        p = [item[k] for k in ("year", "month", "day", "hour", "minute", "second", "millis")]
        if isinstance(jv, int) and not isinstance(jv, bool):  # YEAR
            if p != [jv, None, None, None, None, None, None]:
                self.fail(where, f"{name}: YEAR {p}, json {jv}")
            return
        if not isinstance(jv, str):
            self.fail(where, f"{name}: DateTime {p}, json {jv!r}")
            return
        fsp = fsp_of(jv)
        if None not in p:  # DATETIME
            y, mo, d, h, mi, s, us = p
            text = f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}" + frac(us, fsp)
        elif p[3:] == [None] * 4 and None not in p[:3]:  # DATE
            y, mo, d = p[:3]
            text = f"{y:04d}-{mo:02d}-{d:02d}"
        elif p[:3] == [None] * 3 and None not in p[3:]:  # TIME: negative negates every part
            h, mi, s, us = p[3:]
            neg = any(x < 0 for x in (h, mi, s, us))
            if neg and any(x > 0 for x in (h, mi, s, us)):
                self.fail(where, f"{name}: TIME parts with mixed signs {p}")
            sign = "-" if neg else ""
            text = f"{sign}{abs(h):02d}:{abs(mi):02d}:{abs(s):02d}" + frac(abs(us), fsp)
        else:
            self.fail(where, f"{name}: DateTime parts {p}, json {jv!r}")
            return
        if text != jv:
            self.fail(where, f"{name}: DateTime {p} is {text!r}, json {jv!r}")

    # -- one record --------------------------------------------------------------------------

    def check_record(self, where, a, j):
        self.records += 1
        self.eq(where, "version", a["version"], 0)
        self.eq(where, "sourcePosition", a["sourcePosition"], j["checkpoint"])
        self.eq(where, "safeSourcePosition", a["safeSourcePosition"], j["safe_checkpoint"])
        self.eq(where, "sourceTimestamp", a["sourceTimestamp"], j["timestamp"])
        self.eq(where, "bornTimestamp", a["bornTimestamp"], j["timestamp"])
        self.eq(where, "operation", a["operation"], j["op"])
        self.eq(where, "source.sourceType", a["source"]["sourceType"], "MySQL")
        txid = j.get("gtid") or (str(j["xid"]) if j.get("xid") is not None else "0")
        self.eq(where, "sourceTxid", a["sourceTxid"], txid)
        self.eq(where, "tags.server_id", a["tags"].get("server_id"), str(j["server_id"]))
        if j.get("gtid"):
            self.eq(where, "tags.GTID", a["tags"].get("GTID"), j["gtid"])
        if j.get("thread_id") is not None:
            self.eq(where, "tags.thread_id", a["tags"].get("thread_id"), str(j["thread_id"]))

        op, db, table = j["op"], j["database"], j["table"]

        def esc(name):
            return name.replace(".", "\\u002E")

        dml = op in ("INSERT", "UPDATE", "DELETE")
        if dml:
            want_obj = f"{esc(db)}.{esc(table)}"
        elif op == "DDL":
            # The database the statement names (CREATE TABLE other.t), else the default one.
            named = ddl_database(j.get("ddl") or "")
            obj_db = named if named is not None else db
            want_obj = esc(obj_db) if obj_db is not None else None
        else:
            want_obj = None
        self.eq(where, "objectName", a["objectName"], want_obj)

        fields = j["fields"]
        if dml:
            if not isinstance(a["fields"], list):
                self.fail(where, f"fields: {a['fields']!r} for {op}")
            else:
                self.eq(where, "fields.name", [f["name"] for f in a["fields"]], [f["name"] for f in fields])
                self.eq(
                    where,
                    "fields.dataTypeNumber",
                    [f["dataTypeNumber"] for f in a["fields"]],
                    [f["type"] for f in fields],
                )
            pk = j["primary_key"]
            want_pk = {"PRIMARY": pk} if pk else {}
            try:
                got_pk = json.loads(a["tags"].get("pk_uk_info", "null"))
            except ValueError:
                got_pk = a["tags"].get("pk_uk_info")
            self.eq(where, "tags.pk_uk_info", got_pk, want_pk)
        else:
            self.eq(where, "fields", a["fields"], None)

        for aname, jname, wanted in (
            ("beforeImages", "before", op in ("UPDATE", "DELETE")),
            ("afterImages", "after", op in ("INSERT", "UPDATE")),
        ):
            img = a[aname]
            if op == "DDL" and aname == "afterImages":
                self.eq(where, "afterImages (DDL text)", img, j.get("ddl"))
                continue
            if not wanted:
                self.eq(where, aname, img, None)
                continue
            jimg = j[jname]
            if not isinstance(img, list) or not isinstance(jimg, dict):
                self.fail(where, f"{aname}: avro {img!r}, json {jimg!r}")
                continue
            if len(img) != len(fields):
                self.fail(where, f"{aname}: {len(img)} values for {len(fields)} fields")
                continue
            for f, item in zip(fields, img):
                present = f["name"] in jimg
                self.check_value(f"{where} {aname}", f, item, present, jimg.get(f["name"]))


def run(binary=None, verbose=True):
    binary = Path(binary) if binary else find_binary()
    schema = load_record_schema()
    c = Checker()
    skipped = []
    for path in corpus_files():
        rel = path.relative_to(ROOT)
        av = subprocess.run([str(binary), "-q", "decode", "--format", "avro", str(path)], capture_output=True)
        if av.returncode != 0:
            skipped.append(f"{rel} (exit {av.returncode})")
            continue
        js = subprocess.run([str(binary), "-q", "decode", "--format", "jsonl", str(path)], capture_output=True)
        if js.returncode != 0:
            c.fail(rel, f"jsonl exit {js.returncode} but avro exit 0: {js.stderr[:200]!r}")
            continue
        c.files += 1
        lines = js.stdout.decode("utf-8").splitlines()
        try:
            frames = split_frames(av.stdout)
        except ValueError as e:
            c.fail(rel, f"avro stream: {e}")
            continue
        if len(frames) != len(lines):
            c.fail(rel, f"{len(frames)} avro records but {len(lines)} JSON lines")
            continue
        for i, (frame, line) in enumerate(zip(frames, lines)):
            j = json.loads(line)
            where = f"{rel} record #{i} ({j['op']} at {j['checkpoint']})"
            buf = io.BytesIO(frame)
            try:
                a = fastavro.schemaless_reader(buf, schema, None, return_record_name=True)
            except Exception as e:  # noqa: BLE001 - any reader error is a failure
                c.fail(where, f"fastavro cannot read the record: {type(e).__name__}: {e}")
                continue
            if buf.tell() != len(frame):
                c.fail(where, f"fastavro read {buf.tell()} of {len(frame)} bytes")
            c.check_record(where, a, j)
    if verbose:
        print(
            f"fastavro: {c.files} files, {c.records} records, {c.values} values checked; "
            f"{len(skipped)} files skipped (non-zero exit): {', '.join(skipped)}"
        )
        for f in c.failures:
            print("FAIL", f)
        if c.total_failures:
            print(f"{c.total_failures} failures ({len(c.failures)} shown)")
    return c


def test_fastavro_matches_jsonl():
    c = run(verbose=True)
    assert c.records > 1000, f"only {c.records} records checked"
    assert c.total_failures == 0, "\n".join(c.failures)


def main():
    c = run(sys.argv[1] if len(sys.argv) > 1 else None)
    if c.records <= 1000:
        print(f"only {c.records} records checked")
        return 1
    return 1 if c.total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
