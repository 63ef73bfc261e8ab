#!/usr/bin/env python3
"""Compute the expected answers of trailscope's question commands (root, activity, failures, timeline,
detect, sql) on the real CloudTrail data in testdata/, independently of the Rust code.

Why: the integration tests (tests/cli/questions.rs) must be able to fail. If their expected values came
from running trailscope, a bug in a query plan would be frozen into the expectations. This script is a
second, deliberately plain implementation (Python 3 standard library only) of the semantics the README
documents for each question, working from the raw JSON records: it reads the files, de-duplicates by
eventID (first in path order), maps each record to the events-frame values it needs (including the
`principal` rule), and computes each answer with ordinary loops, dicts and sorts. Its results are
written to testdata/golden/questions/<case>.json, reviewed, and checked in.

Each golden file holds `args` (the command line after `trailscope`), `exit_code`, `format` (how stdout
is to be read: json, or jsonl for JSON Lines) and `expect`: what stdout must hold once parsed (an array
of row objects, or an object of such arrays keyed by section). Columns holding JSON text
(`request_parameters`) are given parsed, so the tests parse that column before comparing.

What it models (README: "The questions", "The events frame", "Input"):
  * inputs: directories walked recursively with entries sorted by name; paths with a CloudTrail-Digest
    or CloudTrail-Insight segment skipped; gzip detected by magic bytes; files whose first byte is not
    `{`/`[` skipped (LICENSE files); shapes {"Records":[...]}, a JSON array, JSON Lines. Anything else
    (Event-history exports, broken files) is not modelled and stops the script.
  * a record without a usable eventTime is rejected (exit code 2); the first record of each (eventID,
    eventTime) in path order is kept, later ones with both the same dropped; records without an eventID are all kept.
  * principal: AssumedRole/FederatedUser -> sessionIssuer.arn, else arn; AWSService -> invokedBy;
    IdentityCenterUser with onBehalfOf.userId -> arn:<partition of identityStoreArn, else aws>:identitystore:::user/<userId>;
    no type but an invokedBy -> invokedBy; otherwise arn, else principalId, else accountId (empty strings
    count as absent).
  * --from/--to: the half-open window [from, to) on eventTime, applied after de-duplication.
  * row orders: as the README states per question (ties kept in input order).
  * sorting: strings by code point, nulls last.

Usage: scripts/golden_questions.py            (rewrites testdata/golden/questions/*.json; runs from
                                               anywhere, it cds to the repository root)
       scripts/golden_questions.py --check    (exit 1 if any golden file would change)
"""
import datetime
import gzip
import ipaddress
import json
import os
import re
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

OUT = "testdata/golden/questions"
INVICTUS = "testdata/invictus-ir"
STRATUS = "testdata/stratus-red-team"
AWSDOCS = "testdata/awsdocs"
S3 = "testdata/s3"

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$")


# ---------------------------------------------------------------------------------------------- input

def walk(path):
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            yield from walk(os.path.join(path, name))
    else:
        yield path


def time_ms(value):
    """Milliseconds since the epoch of a CloudTrail eventTime (`YYYY-MM-DDTHH:MM:SS[.fff]Z`), else None."""
    if not isinstance(value, str):
        return None
    m = TIME_RE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        t = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ms = (t - EPOCH) // datetime.timedelta(milliseconds=1)
    if frac:
        ms += int((frac + "00")[:3])
    return ms


def fmt_ms(ms):
    """RFC 3339 with `Z`; fractional seconds only when there are any."""
    if ms is None:
        return None
    t = EPOCH + datetime.timedelta(milliseconds=ms)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        s += ".%03d" % (ms % 1000)
    return s + "Z"


def day_of(ms):
    return (EPOCH + datetime.timedelta(milliseconds=ms)).strftime("%Y-%m-%d")


def records_of(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    body = raw.lstrip()
    if body[:1] not in (b"{", b"["):
        if path.lower().endswith((".json", ".json.gz", ".jsonl")):
            sys.exit(f"{path}: not JSON but named as JSON; not modelled here")
        return None  # skipped: not a log file
    text = body.decode("utf-8")
    dec = json.JSONDecoder()
    values, pos = [], 0
    while pos < len(text):
        value, pos = dec.raw_decode(text, pos)
        values.append(value)
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    if isinstance(values[0], list):
        records = values[0]
    elif isinstance(values[0].get("Records"), list):
        records = values[0]["Records"]
    else:
        records = values
    for r in records:
        if not isinstance(r, dict) or "CloudTrailEvent" in r:
            sys.exit(f"{path}: record shape not modelled here")
    return records


def leaf(v):
    """A JSON leaf as text: strings as themselves, null as None, anything else as its JSON text."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def boolean(v):
    t = leaf(v)
    if t is None:
        return None
    if t.lower() == "true":
        return True
    if t.lower() == "false":
        return False
    return None


def obj(v):
    return v if isinstance(v, dict) else {}


def nonempty(v):
    return v if v else None


def principal_of(itype, issuer_arn, invoked_by, arn, principal_id, account_id, on_behalf_of=None):
    user = nonempty((on_behalf_of or {}).get("userId"))
    if itype == "IdentityCenterUser" and user:
        store = (on_behalf_of or {}).get("identityStoreArn") or ""
        partition = store.split(":")[1] if store.count(":") >= 1 and store.split(":")[1] else "aws"
        return f"arn:{partition}:identitystore:::user/{user}"
    if itype in ("AssumedRole", "FederatedUser"):
        return nonempty(issuer_arn) or nonempty(arn)
    if itype == "AWSService":
        return nonempty(invoked_by)
    if itype is None and nonempty(invoked_by):
        return invoked_by
    return nonempty(arn) or nonempty(principal_id) or nonempty(account_id)


def to_row(rec):
    """The events-frame values of one record (None if it is rejected: no usable eventTime)."""
    ms = time_ms(rec.get("eventTime"))
    if ms is None:
        return None
    ui = obj(rec.get("userIdentity"))
    ctx = obj(ui.get("sessionContext"))
    issuer = obj(ctx.get("sessionIssuer"))
    attrs = obj(ctx.get("attributes"))
    event_name = leaf(rec.get("eventName"))
    row = {
        "ms": ms,
        "event_source": leaf(rec.get("eventSource")),
        "event_name": event_name,
        "aws_region": leaf(rec.get("awsRegion")),
        "source_ip": leaf(rec.get("sourceIPAddress")),
        "user_agent": leaf(rec.get("userAgent")),
        "error_code": leaf(rec.get("errorCode")),
        "error_message": leaf(rec.get("errorMessage")),
        "read_only": boolean(rec.get("readOnly")),
        "event_type": leaf(rec.get("eventType")),
        "recipient_account_id": leaf(rec.get("recipientAccountId")),
        "event_id": nonempty(leaf(rec.get("eventID"))),
        "identity_type": leaf(ui.get("type")),
        "principal_id": leaf(ui.get("principalId")),
        "arn": leaf(ui.get("arn")),
        "account_id": leaf(ui.get("accountId")),
        "access_key_id": leaf(ui.get("accessKeyId")),
        "user_name": leaf(ui.get("userName")),
        "invoked_by": leaf(ui.get("invokedBy")),
        "session_issuer_arn": leaf(issuer.get("arn")),
        "session_issuer_user_name": leaf(issuer.get("userName")),
        "session_mfa": boolean(attrs.get("mfaAuthenticated")),
        "console_login": leaf(obj(rec.get("responseElements")).get("ConsoleLogin"))
        if event_name == "ConsoleLogin" else None,
        "mfa_used": leaf(obj(rec.get("additionalEventData")).get("MFAUsed")),
        "request_parameters": rec.get("requestParameters"),
        "response_elements": rec.get("responseElements"),
    }
    row["principal"] = principal_of(row["identity_type"], row["session_issuer_arn"], row["invoked_by"], row["arn"],
                                    row["principal_id"], row["account_id"], obj(ui.get("onBehalfOf")))
    return row


def load(*inputs):
    """(events in input order after de-duplication, whether any record was rejected)."""
    rows, rejected = [], False
    for top in inputs:
        for path in walk(top):
            if {"CloudTrail-Digest", "CloudTrail-Insight"} & set(path.split("/")):
                continue
            records = records_of(path)
            if records is None:
                continue
            for rec in records:
                r = to_row(rec)
                if r is None:
                    rejected = True
                else:
                    rows.append(r)
    seen, events = set(), []
    for r in rows:
        if r["event_id"] is not None:
            account = r["recipient_account_id"] if r["recipient_account_id"] is not None else r["account_id"]
            key = (r["event_id"], r["ms"], account or None, r["aws_region"] or None)
            if key in seen:
                continue
            seen.add(key)
        events.append(r)
    return events, rejected


# ------------------------------------------------------------------------------------------- helpers

def present(v):
    return v is not None and v != ""


def is_error(r):
    return present(r["error_code"])


def is_denied(r):
    code = r["error_code"]
    return present(code) and (code.startswith("AccessDenied") or code.endswith("UnauthorizedOperation")
                              or code == "VpceAccessDenied")


def mfa_yes(r):
    return r["mfa_used"] is not None and r["mfa_used"].lower() == "yes"


def service(r):
    s = r["event_source"]
    return s[:-len(".amazonaws.com")] if s is not None and s.endswith(".amazonaws.com") else s


def nl(v):
    """A sort key component: the value, None after everything."""
    return (1, "") if v is None else (0, v)


def by_time(r):
    return (r["ms"], nl(r["event_id"]))


def glob_match(value, pattern):
    """Exact match, or a shell glob (`*`, `?`) matched against the whole value."""
    if value is None:
        return False
    if "*" not in pattern and "?" not in pattern:
        return value == pattern
    rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, value, re.S) is not None


PRINCIPAL_FIELDS = ("principal", "arn", "user_name", "access_key_id", "session_issuer_user_name", "principal_id")


def is_principal(r, patterns):
    return any(glob_match(r[f], p) for p in patterns for f in PRINCIPAL_FIELDS)


def first_non_null(values):
    return next((v for v in values if v is not None), None)


def distinct(values):
    return len({v for v in values if v is not None})


# --------------------------------------------------------------------------------------------- root

ROOT_COLUMNS = ["event_time", "event_id", "recipient_account_id", "event_name", "event_source", "aws_region",
                "source_ip", "user_agent", "error_code", "access_key_id", "console_login", "mfa_used",
                "session_mfa"]


def is_root_usage(r):
    return r["identity_type"] == "Root" and r["invoked_by"] is None and r["event_type"] != "AwsServiceEvent"


def cell(r, name):
    return fmt_ms(r["ms"]) if name == "event_time" else r[name]


def root_rows(events):
    rows = sorted((r for r in events if is_root_usage(r)), key=by_time)
    return [{c: cell(r, c) for c in ROOT_COLUMNS} for r in rows]


def root_summary(events):
    rows = [r for r in events if is_root_usage(r)]
    login = [r for r in rows if r["event_name"] == "ConsoleLogin"]
    success = [r for r in login if r["console_login"] == "Success"]
    failure = [r for r in login if r["error_message"] == "Failed authentication" or r["console_login"] == "Failure"]
    keys = [r["access_key_id"] for r in rows]
    times = [r["ms"] for r in rows]
    return [{
        "events": len(rows),
        "console_logins": len(login),
        "console_login_success": len(success),
        "console_login_failure": len(failure),
        "console_login_success_without_mfa": sum(not mfa_yes(r) for r in success),
        "access_key_events": sum(present(k) for k in keys),
        "akia_key_events": sum(k is not None and k.startswith("AKIA") for k in keys),
        "asia_key_events": sum(k is not None and k.startswith("ASIA") for k in keys),
        "source_ips": distinct(r["source_ip"] for r in rows),
        "first_use": fmt_ms(min(times)) if times else None,
        "last_use": fmt_ms(max(times)) if times else None,
    }]


# ----------------------------------------------------------------------------------------- activity

def group(rows, key):
    """Groups of rows by key, each group's rows in input order."""
    out = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def activity_rows(events):
    out = []
    for principal, rs in group(events, lambda r: r["principal"]).items():
        per_service = {}
        for r in rs:
            per_service[service(r)] = per_service.get(service(r), 0) + 1
        top = sorted(per_service.items(), key=lambda kv: (-kv[1], nl(kv[0])))[:3]
        out.append({
            "principal": principal,
            # The smallest non-null value: independent of row order (a store returns rows in another
            # order than the raw files).
            "principal_type": min((r["identity_type"] for r in rs if r["identity_type"] is not None), default=None),
            "account_id": min((r["account_id"] for r in rs if r["account_id"] is not None), default=None),
            "events": len(rs),
            "errors": sum(is_error(r) for r in rs),
            "first_seen": fmt_ms(min(r["ms"] for r in rs)),
            "last_seen": fmt_ms(max(r["ms"] for r in rs)),
            "services": distinct(service(r) for r in rs),
            "actions": distinct(f"{r['event_source']}:{r['event_name']}"
                                if r["event_source"] is not None and r["event_name"] is not None else None
                                for r in rs),
            "source_ips": distinct(r["source_ip"] for r in rs),
            "regions": distinct(r["aws_region"] for r in rs),
            # Distinct access keys used: an empty accessKeyId (console sign-in events) is no key.
            "access_keys": distinct(nonempty(r["access_key_id"]) for r in rs),
            "user_agents": distinct(r["user_agent"] for r in rs),
            "top_services": ", ".join(f"{s or ''} ({n})" for s, n in top),
        })
    out.sort(key=lambda row: (-row["events"], nl(row["principal"])))
    return out


def breakdown(events, keys):
    """Per (principal, key...): events, errors, first/last seen; sorted by principal, then keys."""
    groups = group(events, lambda r: (r["principal"],) + tuple(f(r) for _, f in keys))
    out = []
    for k, rs in groups.items():
        row = {"principal": k[0]}
        for (name, _), v in zip(keys, k[1:]):
            row[name] = v
        row.update({
            "events": len(rs),
            "errors": sum(is_error(r) for r in rs),
            "first_seen": fmt_ms(min(r["ms"] for r in rs)),
            "last_seen": fmt_ms(max(r["ms"] for r in rs)),
        })
        out.append(row)
    out.sort(key=lambda row: tuple(nl(row[n]) for n in ["principal"] + [n for n, _ in keys]))
    return out


def activity_sections(events, patterns):
    ev = [r for r in events if is_principal(r, patterns)]
    return {
        "principals": activity_rows(ev),
        "by_action": breakdown(ev, [("service", service), ("event_name", lambda r: r["event_name"])]),
        "by_source_ip": breakdown(ev, [("source_ip", lambda r: r["source_ip"])]),
        "by_day": breakdown(ev, [("day", lambda r: day_of(r["ms"]))]),
    }


# ----------------------------------------------------------------------------------------- failures

# (phrase in the lower-cased errorMessage, denial, policy type), first match wins.
DENIAL_PHRASES = [
    ("explicit deny in a service control policy", "explicit_deny", "scp"),
    ("explicit deny in a resource control policy", "explicit_deny", "rcp"),
    ("explicit deny in an identity-based policy", "explicit_deny", "identity"),
    ("explicit deny in a resource-based policy", "explicit_deny", "resource"),
    ("explicit deny in a permissions boundary", "explicit_deny", "boundary"),
    ("explicit deny in a session policy", "explicit_deny", "session"),
    ("explicit deny in a vpc endpoint policy", "explicit_deny", "vpc_endpoint"),
    ("no service control policy allows", "no_allow", "scp"),
    ("no resource control policy allows", "no_allow", "rcp"),
    ("no identity-based policy allows", "no_allow", "identity"),
    ("no resource-based policy allows", "no_allow", "resource"),
    ("no permissions boundary allows", "no_allow", "boundary"),
    ("no session policy allows", "no_allow", "session"),
    ("no vpc endpoint policy allows", "no_allow", "vpc_endpoint"),
]


def classify(message):
    m = (message or "").lower()
    for phrase, denial, policy in DENIAL_PHRASES:
        if phrase in m:
            return denial, policy
    return None, None


def failure_rows(events, denied):
    keys = ["principal", "event_source", "event_name", "error_code"]
    rows = []
    for r in events:
        if denied and not is_denied(r) or not denied and not is_error(r):
            continue
        k = {n: r[n] for n in keys}
        if denied:
            k["denial"], k["policy_type"] = classify(r["error_message"])
        rows.append((k, r))
    if denied:
        keys += ["denial", "policy_type"]
    groups = group(rows, lambda kr: tuple(kr[0][n] for n in keys))
    out = []
    for k, krs in groups.items():
        rs = [r for _, r in krs]
        messages = sorted(r["error_message"] for r in rs if r["error_message"] is not None)
        row = dict(zip(keys, k))
        row.update({
            "count": len(rs),
            "first_seen": fmt_ms(min(r["ms"] for r in rs)),
            "last_seen": fmt_ms(max(r["ms"] for r in rs)),
            "sample_error_message": messages[0] if messages else None,
        })
        out.append(row)
    out.sort(key=lambda row: (-row["count"],) + tuple(nl(row[n]) for n in keys))
    return out


CONSOLE_FAILURE_COLUMNS = ["event_time", "event_id", "recipient_account_id", "user_name", "principal", "source_ip",
                           "user_agent", "error_message", "mfa_used"]


def console_failures(events):
    rows = sorted((r for r in events if r["event_name"] == "ConsoleLogin" and (
        r["error_message"] == "Failed authentication" or r["console_login"] == "Failure")), key=by_time)
    return [{c: cell(r, c) for c in CONSOLE_FAILURE_COLUMNS} for r in rows]


def failures_sections(events, denied):
    return {"failures": failure_rows(events, denied), "console_sign_in_failures": console_failures(events)}


# ----------------------------------------------------------------------------------------- timeline

TIMELINE_COLUMNS = ["event_time", "event_id", "recipient_account_id", "principal", "identity_type", "user_name",
                    "access_key_id", "source_ip", "aws_region", "event_source", "event_name", "read_only",
                    "error_code", "error_message", "user_agent", "request_parameters"]


def in_nets(ip, nets):
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False  # service names (ec2.amazonaws.com), "AWS Internal"
    return any(addr.version == n.version and addr in n for n in nets)


def timeline_filter(events, principals=(), event_names=(), event_sources=(), source_ips=(), errors_only=False,
                    writes_only=False, read_only=False, access_keys=()):
    nets = [ipaddress.ip_network(n, strict=False) for n in source_ips]
    out = []
    for r in events:
        if principals and not is_principal(r, principals):
            continue
        if event_names and not any(glob_match(r["event_name"], p) for p in event_names):
            continue
        if event_sources and not any(glob_match(r["event_source"], p) for p in event_sources):
            continue
        if nets and (r["source_ip"] is None or not in_nets(r["source_ip"], nets)):
            continue
        if errors_only and not is_error(r):
            continue
        if writes_only and r["read_only"] is not False:
            continue
        if read_only and r["read_only"] is not True:
            continue
        if access_keys and not any(glob_match(r["access_key_id"], k) for k in access_keys):
            continue
        out.append(r)
    return out


def timeline_rows(events, **pivots):
    rows = sorted(timeline_filter(events, **pivots), key=by_time)
    return [{c: cell(r, c) for c in TIMELINE_COLUMNS} for r in rows]


ISSUING_CALLS = ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetSessionToken",
                 "GetFederationToken", "AssumeRoot")


def carries(value, key):
    """Does this JSON value hold the string `key` (as a key or a value) anywhere?"""
    if isinstance(value, str):
        return value == key
    if isinstance(value, list):
        return any(carries(v, key) for v in value)
    if isinstance(value, dict):
        return any(k == key or carries(v, key) for k, v in value.items())
    return False


def session_rows(events, key):
    """Rows that used `key` ("used") and the calls that issued it, following issuers' own temporary keys
    back (role chaining, up to 10 hops)."""
    parts = [("used", r) for r in events if r["access_key_id"] == key]
    current, seen = key, [key]
    for _ in range(10):
        issuers = [r for r in events if r["event_name"] in ISSUING_CALLS and carries(r["response_elements"], current)]
        if not issuers:
            break
        parts += [(f"issued {current}", r) for r in issuers]
        nxt = next((r["access_key_id"] for r in issuers if (r["access_key_id"] or "").startswith("ASIA")
                    and r["access_key_id"] not in seen), None)
        if nxt is None:
            break
        current = nxt
        seen.append(nxt)
    parts.sort(key=lambda pr: by_time(pr[1]))
    return [{"pivot": p, **{c: cell(r, c) for c in TIMELINE_COLUMNS}} for p, r in parts]


def timesketch(rows):
    """Timesketch's fields in front of each timeline row."""
    out = []
    for row in rows:
        t = lambda n: "" if row[n] is None else row[n]
        message = f"{t('principal')} {t('event_source')}:{t('event_name')} from {t('source_ip')}"
        if t("error_code"):
            message += f" failed: {t('error_code')}"
        ms = time_ms(row["event_time"])
        dt = (EPOCH + datetime.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)
        out.append({"message": message, "datetime": dt, "timestamp_desc": "Event Time", **row})
    return out


# ------------------------------------------------------------------------------------------- detect

def events_rule(names, source=None):
    return lambda r: r["event_name"] in names and (source is None or r["event_source"] == source)


def target_user(r):
    """requestParameters.userName of IAM calls."""
    rp = r["request_parameters"]
    v = rp.get("userName") if isinstance(rp, dict) else None
    return v if isinstance(v, str) else None


def own_call(r):
    """A call the principal made itself: no invokedBy (a service acting for it), not a service event."""
    return r["invoked_by"] is None and r["event_type"] != "AwsServiceEvent"


def credentials_for_other_user(r):
    # Failed calls are kept: they are reported as attempts (ATTEMPTS).
    if r["event_name"] not in ("CreateAccessKey", "CreateLoginProfile"):
        return False
    target = target_user(r)
    if target is None:
        return False
    return not (r["identity_type"] == "IAMUser" and target == r["user_name"])


# (check id, title, severity, rule on one event); TS-DENIED-THEN-SUCCEEDED is a rule over sequences.
CHECKS = [
    ("CIS-4.1", "Unauthorized API calls", "medium",
     lambda r: r["error_code"] is not None and (r["error_code"].endswith("UnauthorizedOperation")
                                                or r["error_code"].startswith("AccessDenied"))),
    ("CIS-4.2", "Console sign-in without MFA", "high",
     lambda r: r["event_name"] == "ConsoleLogin" and not mfa_yes(r) and r["identity_type"] == "IAMUser"
     and r["console_login"] == "Success"),
    ("CIS-4.3", "Root account usage", "high", is_root_usage),
    ("CIS-4.4", "IAM policy changes", "medium", events_rule({
        "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
        "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
        "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy",
        "DetachGroupPolicy"})),
    ("CIS-4.5", "CloudTrail configuration changes", "high",
     events_rule({"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"})),
    ("CIS-4.6", "Console authentication failures", "medium",
     lambda r: r["event_name"] == "ConsoleLogin" and r["error_message"] == "Failed authentication"),
    ("CIS-4.7", "Disabling or scheduled deletion of customer-managed KMS keys", "high",
     events_rule({"DisableKey", "ScheduleKeyDeletion"}, "kms.amazonaws.com")),
    ("CIS-4.8", "S3 bucket policy changes", "medium", events_rule({
        "PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle", "PutBucketReplication",
        "DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle", "DeleteBucketReplication"},
        "s3.amazonaws.com")),
    ("CIS-4.9", "AWS Config configuration changes", "medium", events_rule({
        "StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel", "PutConfigurationRecorder"},
        "config.amazonaws.com")),
    ("CIS-4.10", "Security group changes", "medium", events_rule({
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup"})),
    ("CIS-4.11", "Network ACL changes", "medium", events_rule({
        "CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
        "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation"})),
    ("CIS-4.12", "Network gateway changes", "medium", events_rule({
        "CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
        "DeleteInternetGateway", "DetachInternetGateway"})),
    ("CIS-4.13", "Route table changes", "medium", events_rule({
        "CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation", "DeleteRouteTable",
        "DeleteRoute", "DisassociateRouteTable"}, "ec2.amazonaws.com")),
    ("CIS-4.14", "VPC changes", "medium", events_rule({
        "CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection", "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection", "AttachClassicLinkVpc", "DetachClassicLinkVpc",
        "DisableVpcClassicLink", "EnableVpcClassicLink"})),
    ("CIS-4.15", "AWS Organizations changes", "medium", events_rule({
        "AcceptHandshake", "AttachPolicy", "CreateAccount", "CreateOrganizationalUnit", "CreatePolicy",
        "DeclineHandshake", "DeleteOrganization", "DeleteOrganizationalUnit", "DeletePolicy", "DetachPolicy",
        "DisablePolicyType", "EnablePolicyType", "InviteAccountToOrganization", "LeaveOrganization", "MoveAccount",
        "RemoveAccountFromOrganization", "UpdatePolicy", "UpdateOrganizationalUnit"}, "organizations.amazonaws.com")),
    ("TS-TRAIL-TAMPER", "CloudTrail logging stopped, trail deleted or event selectors changed", "critical",
     events_rule({"StopLogging", "DeleteTrail", "PutEventSelectors"}, "cloudtrail.amazonaws.com")),
    ("TS-ROOT-ACCESS-KEY", "Access key created for the root user", "critical",
     lambda r: r["event_name"] == "CreateAccessKey" and r["identity_type"] == "Root" and target_user(r) is None),
    ("TS-CRED-FOR-OTHER-USER", "Access key or console password created for another user", "high",
     credentials_for_other_user),
    ("TS-DENIED-THEN-SUCCEEDED", "Principal denied many times, then succeeded", "high", None),
    ("TS-NO-MFA-SESSION", "IAM user call in a session not MFA-authenticated", "medium",
     lambda r: r["identity_type"] == "IAMUser" and r["session_mfa"] is False and r["event_name"] != "ConsoleLogin"
     and own_call(r)),
    ("TS-SSM-SESSION", "SSM Session Manager session started, resumed or terminated", "low",
     events_rule({"StartSession", "ResumeSession", "TerminateSession"}, "ssm.amazonaws.com")),
    # TS-OUTSIDE-NETWORK and TS-OUTSIDE-HOURS need --allowed-cidr / --allowed-hours: skipped without them.
    ("TS-OUTSIDE-NETWORK", "Call from outside the allowed networks", "medium", False),
    ("TS-OUTSIDE-HOURS", "Call outside the allowed hours", "low", False),
]


def denied_then_succeeded(events):
    """Per principal, in time order: the first successful call made after at least 5 authorization failures."""
    denied, reported, out = {}, set(), []
    for r in sorted((r for r in events if present(r["principal"]) and own_call(r)), key=by_time):
        p = r["principal"]
        denied[p] = denied.get(p, 0) + is_denied(r)
        if denied[p] >= 5 and not is_error(r) and p not in reported:
            reported.add(p)
            out.append(r)
    return out


# A failed tampering or credential call is an attempt: "Attempted: <title>", with this severity.
ATTEMPTS = {"TS-TRAIL-TAMPER": "medium", "TS-ROOT-ACCESS-KEY": "high", "TS-CRED-FOR-OTHER-USER": "medium"}


def outcome(r):
    return "denied" if is_denied(r) else "failed" if is_error(r) else "succeeded"


def detect_rows(events, only=()):
    out = []
    for cid, title, severity, rule in CHECKS:
        if only and cid not in only:
            continue
        if rule is False:
            continue
        hits = denied_then_succeeded(events) if rule is None else [r for r in events if rule(r)]
        for r in hits:
            attempt = cid in ATTEMPTS and is_error(r)
            out.append({"check_id": cid, "title": ("Attempted: " + title) if attempt else title,
                        "severity": ATTEMPTS[cid] if attempt else severity, "event_time": fmt_ms(r["ms"]),
                        "principal": r["principal"], "event_name": r["event_name"], "source_ip": r["source_ip"],
                        "event_id": r["event_id"], "error_code": r["error_code"], "outcome": outcome(r),
                        "_ms": r["ms"]})
    out.sort(key=lambda f: (f["_ms"], f["check_id"], nl(f["event_id"])))
    for f in out:
        del f["_ms"]
    return out


# ---------------------------------------------------------------------------------------------- sql

def count_by(events, column, limit=None):
    """`SELECT column, count(*) AS n FROM events GROUP BY column ORDER BY n DESC, column [LIMIT k]`."""
    n = {}
    for r in events:
        n[r[column]] = n.get(r[column], 0) + 1
    rows = sorted(n.items(), key=lambda kv: (-kv[1], nl(kv[0])))
    return [{column: k, "n": v} for k, v in rows[:limit]]


def errors_by_principal(events):
    """`SELECT principal, count(*) AS errors, min(event_time) AS first FROM events WHERE error_code IS NOT NULL
    GROUP BY principal ORDER BY errors DESC, principal`."""
    groups = group([r for r in events if r["error_code"] is not None], lambda r: r["principal"])
    rows = [{"principal": p, "errors": len(rs), "first": fmt_ms(min(r["ms"] for r in rs))} for p, rs in groups.items()]
    rows.sort(key=lambda row: (-row["errors"], nl(row["principal"])))
    return rows


# -------------------------------------------------------------------------------------------- cases

SQL_EVENT_NAMES = "SELECT event_name, count(*) AS n FROM events GROUP BY event_name ORDER BY n DESC, event_name LIMIT 10"
SQL_ERRORS = ("SELECT principal, count(*) AS errors, min(event_time) AS first FROM events "
              "WHERE error_code IS NOT NULL GROUP BY principal ORDER BY errors DESC, principal")
STRATUS_SESSION = "ASIANQQHHS551LWULIWD"  # GetPasswordData attempts, issued by an AssumeRole
STRATUS_FEDERATION = "ASIASTJKC5GCM7ZE6LUP"  # a federated user's key, issued by GetFederationToken
ROLE_GLOB = "arn:aws:iam::*:role/stratus-red-team-*"


def cases():
    invictus, inv_bad = load(INVICTUS)
    stratus, str_bad = load(STRATUS)
    awsdocs, docs_bad = load(AWSDOCS)
    s3, s3_bad = load(S3)
    code = {INVICTUS: 2 if inv_bad else 0, STRATUS: 2 if str_bad else 0, AWSDOCS: 2 if docs_bad else 0,
            S3: 2 if s3_bad else 0}

    def case(name, args, inp, expect, fmt="json"):
        return name, {"args": args, "exit_code": code[inp], "format": fmt, "expect": expect}

    j = ["--format", "json"]
    yield case("root-awsdocs", ["root", AWSDOCS, *j], AWSDOCS, root_rows(awsdocs))
    yield case("root-awsdocs-summary", ["root", AWSDOCS, "--summary", *j], AWSDOCS, root_summary(awsdocs))
    yield case("root-invictus", ["root", INVICTUS, *j], INVICTUS, root_rows(invictus))
    yield case("root-invictus-summary", ["root", INVICTUS, "--summary", *j], INVICTUS, root_summary(invictus))

    yield case("activity-invictus", ["activity", INVICTUS, *j], INVICTUS, activity_rows(invictus))
    yield case("activity-stratus", ["activity", STRATUS, *j], STRATUS, activity_rows(stratus))
    lo, hi = "2023-07-10T12:00:00Z", "2023-07-10T12:10:00Z"
    window = [r for r in invictus if time_ms(lo) <= r["ms"] < time_ms(hi)]
    yield case("activity-invictus-window", ["activity", INVICTUS, "--from", lo, "--to", hi, *j], INVICTUS,
               activity_rows(window))
    yield case("activity-s3", ["activity", S3, *j], S3, activity_rows(s3))
    yield case("activity-invictus-benjamin", ["activity", INVICTUS, "--principal", "benjamin", *j], INVICTUS,
               activity_sections(invictus, ["benjamin"]))
    yield case("activity-stratus-role-glob", ["activity", STRATUS, "--principal", ROLE_GLOB, *j], STRATUS,
               activity_sections(stratus, [ROLE_GLOB]))

    yield case("failures-invictus", ["failures", INVICTUS, *j], INVICTUS, failures_sections(invictus, False))
    yield case("failures-invictus-denied", ["failures", INVICTUS, "--denied", *j], INVICTUS,
               failures_sections(invictus, True))
    yield case("failures-stratus", ["failures", STRATUS, *j], STRATUS, failures_sections(stratus, False))
    yield case("failures-stratus-denied", ["failures", STRATUS, "--denied", *j], STRATUS,
               failures_sections(stratus, True))
    yield case("failures-awsdocs", ["failures", AWSDOCS, *j], AWSDOCS, failures_sections(awsdocs, False))

    yield case("timeline-stratus", ["timeline", STRATUS, *j], STRATUS, timeline_rows(stratus))
    yield case("timeline-invictus-cidr", ["timeline", INVICTUS, "--source-ip", "10.107.0.0/16", "--source-ip",
                                          "52.45.102.28", *j], INVICTUS,
               timeline_rows(invictus, source_ips=["10.107.0.0/16", "52.45.102.28"]))
    yield case("timeline-invictus-event-name", ["timeline", INVICTUS, "--event-name", "Delete*", "--event-name",
                                                "Stop?ogging", *j], INVICTUS,
               timeline_rows(invictus, event_names=["Delete*", "Stop?ogging"]))
    yield case("timeline-invictus-errors-only", ["timeline", INVICTUS, "--errors-only", "--source-ip", "10.0.0.0/8",
                                                 *j], INVICTUS,
               timeline_rows(invictus, errors_only=True, source_ips=["10.0.0.0/8"]))
    yield case("timeline-invictus-writes-only", ["timeline", INVICTUS, "--writes-only", "--event-source",
                                                 "iam.amazonaws.com", "--principal", "bert-jan", *j], INVICTUS,
               timeline_rows(invictus, writes_only=True, event_sources=["iam.amazonaws.com"],
                             principals=["bert-jan"]))
    yield case("timeline-stratus-read-only-temporary-keys", ["timeline", STRATUS, "--read-only", "--access-key",
                                                             "ASIA*", *j], STRATUS,
               timeline_rows(stratus, read_only=True, access_keys=["ASIA*"]))
    yield case("timeline-stratus-session", ["timeline", STRATUS, "--session", STRATUS_SESSION, *j], STRATUS,
               session_rows(stratus, STRATUS_SESSION))
    yield case("timeline-stratus-session-federation", ["timeline", STRATUS, "--session", STRATUS_FEDERATION, *j],
               STRATUS, session_rows(stratus, STRATUS_FEDERATION))
    yield case("timeline-stratus-timesketch", ["timeline", STRATUS, "--event-name", "*Trail*", "--event-name",
                                               "GetPasswordData", "--format", "timesketch"], STRATUS,
               timesketch(timeline_rows(stratus, event_names=["*Trail*", "GetPasswordData"])), fmt="jsonl")

    yield case("detect-stratus", ["detect", STRATUS, *j], STRATUS, detect_rows(stratus))
    yield case("detect-invictus", ["detect", INVICTUS, *j], INVICTUS, detect_rows(invictus))
    yield case("detect-awsdocs", ["detect", AWSDOCS, *j], AWSDOCS, detect_rows(awsdocs))
    yield case("detect-stratus-subset", ["detect", STRATUS, "--check", "TS-TRAIL-TAMPER", "--check", "cis-4.2", *j],
               STRATUS, detect_rows(stratus, only=("TS-TRAIL-TAMPER", "CIS-4.2")))

    yield case("sql-invictus-event-names", ["sql", INVICTUS, "--query", SQL_EVENT_NAMES, *j], INVICTUS,
               count_by(invictus, "event_name", limit=10))
    yield case("sql-stratus-errors", ["sql", STRATUS, "--query", SQL_ERRORS, *j], STRATUS,
               errors_by_principal(stratus))


def refresh(path, doc, check):
    """Is the golden file at `path` already `doc`? If not, write it (unless only checking)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text and not check:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return old == text


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    stale, names = [], set()
    for name, golden in cases():
        names.add(name + ".json")
        if not refresh(os.path.join(OUT, name + ".json"), {"case": name, **golden}, check):
            stale.append(os.path.join(OUT, name + ".json"))
    extra = sorted(set(os.listdir(OUT)) - names)
    if extra:
        stale += [os.path.join(OUT, n) + " (no longer a case: delete it)" for n in extra]
    if check and stale:
        sys.exit("golden files out of date: " + ", ".join(stale))
    print("golden files are up to date" if check else "written: " + (", ".join(stale) or "nothing (no change)"))


if __name__ == "__main__":
    main()
