#!/usr/bin/env python3
"""Compute the expected `trailscope scan` numbers for the files in testdata/, independently of the Rust code.

Why: the integration tests (tests/cli/scan.rs) must be able to fail. If their expected values came from
running trailscope, a bug in the ingest engine would be frozen into the expectations. This script is a
second, deliberately plain implementation (Python 3 standard library only: os, gzip, json) of what a scan
should find: it walks the inputs, gunzips by magic bytes, parses the JSON shapes CloudTrail data comes in,
and counts files, records, rejected records, duplicate eventIDs and events by account, region and day.
Its results are written to testdata/golden/<case>.json, reviewed, and checked in.

What it models (the documented semantics of `trailscope scan --format json`):
  * inputs: directories are walked recursively, entries sorted by name; any path with a `CloudTrail-Digest`
    or `CloudTrail-Insight` segment is skipped unread.
  * a file is gunzipped when it starts with the gzip magic bytes (all members); it fails if the
    decompressed size exceeds the cap (--max-file-mb), if the gzip stream is truncated or corrupt, if it
    is empty, or if its JSON is invalid. A file that is not JSON at all (first byte not `{` or `[`), or
    an empty file, is skipped instead when its name does not end in .json/.jsonl/.ndjson[.gz].
  * shapes: {"Records":[...]} (S3 delivery), {"Events":[...]}, a JSON array, JSON Lines (any stream of
    objects). Records of Event-history exports carry the event as a JSON string in `CloudTrailEvent`.
    Valid JSON in which no record has eventVersion/eventTime/eventSource/eventName/CloudTrailEvent is
    skipped ("not CloudTrail").
  * a record without eventTime, with an eventTime that is not RFC 3339, or with a CloudTrailEvent that
    is not a JSON event is rejected; every other record is a row ("records").
  * account = recipientAccountId, else userIdentity.accountId; region = awsRegion; day = UTC date of
    eventTime. Filters: --from/--to half-open [from, to) on eventTime, --account, --region.
  * de-duplication: the first row of each (eventID, eventTime, account, region) in path order is the
    event (an empty account or region counts as none), every later row with all four the same is a duplicate, whether or not the first one is selected by the filters; rows without an
    eventID (absent or "") are all kept. `events` counts the selected first rows, `duplicates` the
    selected later ones.
Key pruning of S3 layouts by --from/--to is not modelled: a case whose window would prune files stops
this script with an error (the tests check pruning with hand-checked facts instead).

Usage: scripts/golden.py            (rewrites testdata/golden/*.json; runs from anywhere, it cds to the repo root)
       scripts/golden.py --check    (exit 1 if any golden file would change)
"""
import datetime
import gzip
import io
import json
import os
import re
import sys
import zlib

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

OUT = "testdata/golden"
MIB = 1 << 20

# One case per golden file: inputs and filters, written to the file as the command line (`args`) to run.
CASES = [
    {"name": "invictus", "inputs": ["testdata/invictus-ir"]},
    {"name": "stratus", "inputs": ["testdata/stratus-red-team"]},
    {"name": "s3", "inputs": ["testdata/s3"]},
    # A window inside the S3 data (same delivery day, so no file is pruned by its key); it cuts through the
    # re-delivered files, so some duplicates fall inside it and some outside.
    {"name": "s3-window", "inputs": ["testdata/s3"], "from": "2023-07-10T11:43:00Z", "to": "2023-07-10T11:56:00Z"},
    # 3 events at exactly 12:00:00 (kept: --from is inclusive), 2 at exactly 12:10:00 (dropped: --to is not).
    {"name": "invictus-window", "inputs": ["testdata/invictus-ir"],
     "from": "2023-07-10T12:00:00Z", "to": "2023-07-10T12:10:00Z"},
    {"name": "plaso", "inputs": ["testdata/plaso"]},
    {"name": "awsdocs", "inputs": ["testdata/awsdocs"]},
    {"name": "awsdocs-account", "inputs": ["testdata/awsdocs"], "accounts": ["111122223333"]},
    {"name": "stratus-region", "inputs": ["testdata/stratus-red-team"], "regions": ["us-north-2r", "ca-northsouth-2r"]},
    {"name": "trailscraper", "inputs": ["testdata/trailscraper"]},
    {"name": "malformed", "inputs": ["testdata/malformed"], "max_file_mb": 16},
    {"name": "otrf", "inputs": ["testdata/otrf"]},
    {"name": "panther", "inputs": ["testdata/panther"]},
    # Everything at once (the golden folder itself is left out): cross-folder duplicates, e.g. the S3
    # layout re-delivers Invictus IR files and the bomb holds three Invictus IR events.
    {"name": "all", "inputs": [
        "testdata/awsdocs", "testdata/invictus-ir", "testdata/malformed", "testdata/otrf", "testdata/panther",
        "testdata/plaso", "testdata/s3", "testdata/stratus-red-team", "testdata/trailscraper"]},
]

JSON_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
CLOUDTRAIL_KEYS = ("eventVersion", "eventTime", "eventSource", "eventName", "CloudTrailEvent")
TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Fail(Exception):
    """The file fails: it should hold CloudTrail JSON but cannot be read."""


class Skip(Exception):
    """The file is skipped: it is not a CloudTrail log file."""


def walk(path):
    """Files under `path` in the order trailscope reads them (entries sorted by name, depth first)."""
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            yield from walk(os.path.join(path, name))
    else:
        yield path


def time_ms(value):
    """Milliseconds since the epoch of an RFC 3339 time (or `YYYY-MM-DD HH:MM:SS+hh:mm`), else None."""
    if not isinstance(value, str):
        return None
    m = TIME_RE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, _z, sign, oh, om = m.groups()
    try:
        t = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ms = (t - EPOCH) // datetime.timedelta(milliseconds=1)
    if frac:
        ms += int((frac + "00")[:3])
    if sign:
        offset = (int(oh) * 60 + int(om)) * 60_000
        ms += -offset if sign == "+" else offset
    return ms


def fmt_ms(ms):
    t = EPOCH + datetime.timedelta(milliseconds=ms)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        s += ".%03d" % (ms % 1000)
    return s + "Z"


def leaf(value):
    """A JSON leaf as text: strings as themselves, null as None, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def decode(path, cap):
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise Fail("empty file")
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                data = g.read(cap + 1)
        except EOFError:
            raise Fail("truncated gzip")
        except (OSError, zlib.error) as e:
            raise Fail(f"corrupt gzip: {e}")
        if len(data) > cap:
            raise Fail("decompressed size exceeds the cap")
        return data
    if len(raw) > cap:
        raise Fail("file exceeds the cap")
    return raw


def parse(data):
    """The list of record objects in `data` (bytes)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    body = data.lstrip(b" \t\r\n\x0c")
    if not body:
        raise Fail("only whitespace")
    if body[:1] not in (b"{", b"["):
        raise Skip("not JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("invalid JSON: not UTF-8")
    dec = json.JSONDecoder()
    values, pos = [], 0
    try:
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos == len(text):
                break
            value, pos = dec.raw_decode(text, pos)
            values.append(value)
    except json.JSONDecodeError as e:
        raise Fail(f"invalid JSON: {e.msg}")
    first = values[0]
    if isinstance(first, list):
        if len(values) > 1:
            raise Fail("invalid JSON: trailing data after an array")
        records = first
    elif first.get("Records") is not None or first.get("Events") is not None:
        if len(values) > 1:
            raise Fail("a Records/Events document followed by more JSON")
        records = first["Records"] if first.get("Records") is not None else first["Events"]
        if not isinstance(records, list):
            raise Fail("invalid JSON: Records/Events is not a list")
    else:
        records = values
    if not all(isinstance(r, dict) for r in records):
        raise Fail("invalid JSON: a record is not an object")
    if records and not any(r.get(k) is not None for r in records for k in CLOUDTRAIL_KEYS):
        raise Skip("JSON, but not CloudTrail records")
    return records


def row(rec):
    """(row, None) for a usable record, (None, why) for a rejected one."""
    if rec.get("CloudTrailEvent") is not None:
        inner = rec["CloudTrailEvent"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except json.JSONDecodeError:
                return None, "bad embedded event"
        if not isinstance(inner, dict):
            return None, "bad embedded event"
        rec = inner
    t = rec.get("eventTime")
    if t is None:
        return None, "no eventTime"
    ms = time_ms(t)
    if ms is None:
        return None, "eventTime not RFC 3339"
    ui = rec.get("userIdentity")
    caller_account = leaf(ui.get("accountId")) if isinstance(ui, dict) else None
    account = leaf(rec.get("recipientAccountId"))
    if account is None:
        account = caller_account
    event_id = leaf(rec.get("eventID")) or None
    region = leaf(rec.get("awsRegion"))
    day = (EPOCH + datetime.timedelta(milliseconds=ms)).strftime("%Y-%m-%d")
    return {"ms": ms, "id": event_id, "account": account, "region": region, "day": day}, None


def counts(rows, key):
    n = {}
    for r in rows:
        n[r[key]] = n.get(r[key], 0) + 1
    # Sorted by key, no key (null) last.
    keys = sorted(k for k in n if k is not None) + ([None] if None in n else [])
    return [{"key": k, "events": n[k]} for k in keys]


def key_date(path):
    """The delivery date in an `AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/f` path, if any."""
    parts = path.split("/")
    if "AWSLogs" not in parts:
        return None
    rest = parts[len(parts) - 1 - parts[::-1].index("AWSLogs") + 1:]
    if rest and rest[0].startswith("o-"):
        rest = rest[1:]
    if len(rest) < 7 or rest[1] != "CloudTrail":
        return None
    try:
        return datetime.date(int(rest[3]), int(rest[4]), int(rest[5]))
    except ValueError:
        return None


def run_case(case):
    cap = case.get("max_file_mb", 1024) * MIB
    lo = time_ms(case["from"]) if "from" in case else None
    hi = time_ms(case["to"]) if "to" in case else None
    accounts = case.get("accounts", [])
    regions = case.get("regions", [])
    out = {"files": 0, "files_skipped": 0, "files_failed": 0, "records": 0, "records_rejected": 0,
           "records_without_event_id": 0}
    skipped, failed, rejected, rows = [], [], [], []
    for top in case["inputs"]:
        for path in walk(top):
            segments = path.split("/")
            if "CloudTrail-Digest" in segments:
                skipped.append({"path": path, "why": "CloudTrail digest file"})
                continue
            if "CloudTrail-Insight" in segments:
                skipped.append({"path": path, "why": "CloudTrail Insights file"})
                continue
            if (accounts or regions) and "AWSLogs" in segments:
                sys.exit(f"case {case['name']}: account/region pruning by S3 key is not modelled here")
            d = key_date(path)
            if d is not None and (lo is not None or hi is not None):
                day_ms = time_ms(d.isoformat() + "T00:00:00Z")
                if (lo is not None and day_ms + 25 * 3_600_000 <= lo) or (hi is not None and day_ms - 86_400_000 >= hi):
                    sys.exit(f"case {case['name']}: {path} would be pruned by its key; not modelled here")
            named_json = path.lower().endswith(JSON_SUFFIXES)
            try:
                records = parse(decode(path, cap))
            except Skip as e:
                if named_json and str(e) == "not JSON":
                    failed.append({"path": path, "why": "not JSON, but named as JSON"})
                else:
                    skipped.append({"path": path, "why": str(e)})
                continue
            except Fail as e:
                if str(e) == "empty file" and not named_json:
                    skipped.append({"path": path, "why": "empty file, not named as JSON"})
                else:
                    failed.append({"path": path, "why": str(e)})
                continue
            out["files"] += 1
            why_n = {}
            for rec in records:
                r, why = row(rec)
                if r is None:
                    why_n[why] = why_n.get(why, 0) + 1
                    continue
                out["records"] += 1
                out["records_without_event_id"] += r["id"] is None
                rows.append(r)
            for why, n in sorted(why_n.items()):
                out["records_rejected"] += n
                rejected.append({"path": path, "records": n, "why": why})
    out["files_skipped"] = len(skipped)
    out["files_failed"] = len(failed)

    def selected(r):
        return ((lo is None or r["ms"] >= lo) and (hi is None or r["ms"] < hi)
                and (not accounts or r["account"] in accounts) and (not regions or r["region"] in regions))

    # De-duplicate over every row in path order, then filter: a row is a duplicate when an earlier row
    # (selected or not) has its eventID and its eventTime in the same account and region (a redelivery
    # repeats all four; AWS's doc examples reuse ids across different events); events are the selected
    # first occurrences and `duplicates` the selected repeats, so selected rows = events + duplicates.
    seen, events, dupes = set(), [], 0
    for r in rows:
        key = (r["id"], r["ms"], r["account"] or None, r["region"] or None)
        repeat = r["id"] is not None and key in seen
        if r["id"] is not None:
            seen.add(key)
        if selected(r):
            if repeat:
                dupes += 1
            else:
                events.append(r)
    args = ["scan", *case["inputs"], "--format", "json"]
    for flag, key in (("--from", "from"), ("--to", "to")):
        if key in case:
            args += [flag, case[key]]
    for a in accounts:
        args += ["--account", a]
    for r in regions:
        args += ["--region", r]
    if "max_file_mb" in case:
        args += ["--max-file-mb", str(case["max_file_mb"])]
    out.update({
        "events": len(events),
        "duplicates": dupes,
        "distinct_event_ids": len({r["id"] for r in events if r["id"] is not None}),
        "events_without_event_id": sum(r["id"] is None for r in events),
        "first_event_time": fmt_ms(min(r["ms"] for r in events)) if events else None,
        "last_event_time": fmt_ms(max(r["ms"] for r in events)) if events else None,
        "skipped": skipped,
        "failed": failed,
        "rejected": rejected,
        "by_account": counts(events, "account"),
        "by_region": counts(events, "region"),
        "by_day": counts(events, "day"),
    })
    return {"case": case["name"], "args": args, "exit_code": 2 if failed or rejected else 0, **out}


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    stale = []
    for case in CASES:
        text = json.dumps(run_case(case), indent=2) + "\n"
        path = os.path.join(OUT, case["name"] + ".json")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            stale.append(path)
            if not check:
                with open(path, "w") as f:
                    f.write(text)
    if check and stale:
        sys.exit("golden files out of date: " + ", ".join(stale))
    if check:
        print("golden files are up to date")
    else:
        print("written: " + (", ".join(stale) or "nothing (no change)"))


if __name__ == "__main__":
    main()
