#!/usr/bin/env python3
"""Reference evaluator of Sigma rules over CloudTrail events: the expected hits of `trailscope hunt`.

Why: the hunt tests must be able to fail. Their expected hits (testdata/golden/hunt/<folder>.json) come from this
second, deliberately plain implementation (Python 3 standard library + PyYAML), written from the semantics
below and not from the Rust code, so trailscope is never compared with itself.

Usage: scripts/sigma_expected.py --rules DIR_OR_FILE [--rules ...] INPUT...
Prints {"hits": [{"rule_id", "event_id", "event_time"}...], "rules_loaded": [ids], "rules_failed":
[{"file", "reason"}]} as JSON on stdout; notes on skipped files and records go to stderr.
Paths are printed as given (relative to the current directory); run it from the repository root.

Reading the events (the same as `trailscope scan`, see scripts/golden.py):
  * INPUTs in command-line order; directories walked recursively, entries sorted by name; any path with a
    `CloudTrail-Digest` or `CloudTrail-Insight` segment is skipped unread. Files are gunzipped when they
    start with the gzip magic bytes.
  * shapes: {"Records":[...]} (S3 delivery), {"Events":[...]}, a JSON array, JSON Lines. A record with a
    `CloudTrailEvent` (event history) is replaced by the event in it. A file that is not JSON, fails to
    parse, or holds no record with eventVersion/eventTime/eventSource/eventName/CloudTrailEvent is skipped
    (named on stderr).
  * a record without eventTime, or whose eventTime is not RFC 3339, is skipped (counted on stderr).
  * de-duplication: a record is a duplicate of an earlier one (path order) when both have the same eventID
    and the same eventTime instant (compared as parsed times, as trailscope does), in the same account
    (recipientAccountId, else userIdentity.accountId) and awsRegion; the first counts. A
    record without eventID (absent or "") is never a duplicate.
  * the event a rule sees is the record's JSON object as delivered; `event_time` in a hit is its eventTime
    string as written, `event_id` its eventID (null when absent). Hits are sorted by (event_time string,
    event_id with null first, rule_id).

Rules:
  * --rules files and directories (walked recursively, sorted; *.yml, *.yaml). Each YAML document with a
    `detection` is a rule; one with `correlation` fails ("correlation not evaluated by the reference
    script"). A rule needs a string `id` (unique among the loaded rules), `logsource` product aws and
    service cloudtrail (else "not a CloudTrail rule"), and `detection` with a `condition`.
  * YAML scalars are read as text except null (`null`, `~`, empty): `123`, `1.10`, `true`, `yes` and dates
    stay the strings written, so a number in a rule is compared as written.
  * `rules_loaded` is sorted by id; `rules_failed` in file order.

Matching (the contract the Rust evaluator implements too):
  * a field name is a dotted JSON path of any depth. When a step meets a list, every element (lists
    inside lists flattened) that is an object is followed; elements without the key contribute nothing.
    The path resolves to zero or more terminal values; "missing" means zero.
  * a terminal that is a list: each element is tried; if no element matches, the whole list's JSON text
    is tried. An element that is itself an object or list is tried as its JSON text.
  * text of a value: strings as themselves; numbers and booleans as their JSON text (`true`, `123`, `1.5`,
    Python's json.dumps); objects and lists as json.dumps(v, sort_keys=True, separators=(',',':'),
    ensure_ascii=False). JSON null has no text: it matches only a `null` rule value.
  * selection map: all fields must match (AND); list of maps: any (OR); value list: any value;
    `|all`: every value (each value may match a different terminal/element).
  * value null: matches a missing field or a JSON null (a terminal null, or a null element of a terminal
    list). null with any modifier, an empty value list, or an object as value: the rule fails to load.
  * case-insensitive by default (Python re.IGNORECASE: Unicode simple case folding); `|cased` makes it
    case-sensitive. Wildcards `*` (any run, also empty) and `?` (exactly one char); `\\*`, `\\?` are a
    literal `*`/`?`; `\\\\` is one literal backslash; a backslash before any other char (or at the end) is
    a literal backslash and the next char is read normally. Without wildcards: whole-value equality.
  * modifiers: contains / startswith / endswith (add `*` around / after / before; wildcards inside still
    honoured; at most one of them); all; exists (value true/false, case-insensitive; true = the path
    resolves to at least one value, JSON null included); re (Python re.search on the text, case-sensitive,
    sub-modifiers i, m, s); cidr (the text is an IP address inside the network, strict=False); gt, gte,
    lt, lte (the rule value must be a number; the field must be a JSON number (not a boolean) or a string
    written as a decimal number `-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?`; else no match); base64 (the value is
    replaced by its standard base64 with padding, matched literally); base64offset (the three offset
    variants of pySigma, any of them); windash (every `-` or `/` matching `\\B[-/]\\b` is replaced, in
    every combination, by each of - / U+2013 U+2014 U+2015); fieldref (the value names another field;
    match when some text of this field equals some text of that one, case-insensitive unless cased; with
    contains/startswith/endswith: the other field's text literally inside/at the start/at the end; a
    missing or null other field never matches); cased. Transformations (base64, base64offset, windash)
    apply in the order written, then contains/startswith/endswith. re, cidr, gt/gte/lt/lte and exists
    take no other modifier (except all with re/cidr/gt..., and i/m/s with re); fieldref takes
    contains/startswith/endswith, all and cased. Any other modifier or combination: the rule fails.
  * keyword selection (a list of strings, or one string): a keyword matches when `*kw*` (wildcards as
    above, case-insensitive) matches any string leaf anywhere in the event (object keys, numbers and
    booleans are not leaves); any keyword of the list. A list mixing strings and maps fails to load.
  * condition: and, or, not, parentheses (precedence not > and > or; operators case-insensitive),
    `1 of P`, `all of P` where P is a selection name or a pattern with `*` (matching no selection:
    fails), `1 of them`, `all of them` (them = every selection whose name does not start with `_`).
    A list of conditions is their OR. Aggregations (`|` in a condition) fail to load. `timeframe` in
    detection is not a selection and is ignored.
"""
import argparse
import base64
import datetime
import ipaddress
import itertools
import json
import os
import re
import sys

import yaml

# ---------------------------------------------------------------------------------------------------
# Reading CloudTrail events


TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def time_key(value):
    """A comparable instant (UTC, nanoseconds) of an RFC 3339 time, else None."""
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
    secs = int(t.timestamp())
    if sign:
        off = (int(oh) * 60 + int(om)) * 60
        secs += -off if sign == "+" else off
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return secs * 1_000_000_000 + nanos


# Files are read as scripts/golden.py reads them for the scan goldens (walk order, gzip with the cap,
# shapes, what is not CloudTrail); it changes to the repository root when imported, so the caller's
# directory is restored for the paths given on the command line.
_cwd = os.getcwd()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

os.chdir(_cwd)

walk = golden.walk

#: trailscope's default --max-file-mb.
CAP = 1 << 30


class NotCloudTrail(Exception):
    pass


def read_records(path):
    """The record objects of one file, or raise NotCloudTrail(why)."""
    try:
        return golden.parse(golden.decode(path, CAP))
    except (golden.Skip, golden.Fail) as e:
        raise NotCloudTrail(str(e))


def load_events(inputs, log=sys.stderr):
    """The de-duplicated events in path order: (event object, eventID or None, eventTime string)."""
    events, seen = [], set()
    no_time = bad_time = bad_inner = dupes = 0
    for top in inputs:
        for path in walk(top):
            segs = path.split(os.sep)
            if "CloudTrail-Digest" in segs or "CloudTrail-Insight" in segs:
                print(f"skipped {path}: digest/Insights path", file=log)
                continue
            try:
                records = read_records(path)
            except (NotCloudTrail, OSError) as e:
                print(f"skipped {path}: {e}", file=log)
                continue
            for rec in records:
                if rec.get("CloudTrailEvent") is not None:
                    inner = rec["CloudTrailEvent"]
                    if isinstance(inner, str):
                        try:
                            inner = json.loads(inner)
                        except json.JSONDecodeError:
                            inner = None
                    if not isinstance(inner, dict):
                        bad_inner += 1
                        continue
                    rec = inner
                t = rec.get("eventTime")
                if t is None:
                    no_time += 1
                    continue
                tk = time_key(t)
                if tk is None:
                    bad_time += 1
                    continue
                eid = rec.get("eventID")
                if eid is not None and not isinstance(eid, str):
                    eid = json.dumps(eid, separators=(",", ":"))
                if eid == "":
                    eid = None
                if eid is not None:
                    def text(v):
                        return v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                    ui = rec.get("userIdentity") if isinstance(rec.get("userIdentity"), dict) else {}
                    recipient = text(rec.get("recipientAccountId"))
                    account = recipient if recipient is not None else text(ui.get("accountId"))
                    key = (eid, tk, account or None, text(rec.get("awsRegion")) or None)
                    if key in seen:
                        dupes += 1
                        continue
                    seen.add(key)
                events.append((rec, eid, t))
    print(f"events: {len(events)}, duplicates dropped: {dupes}, records without eventTime skipped: {no_time}, "
          f"with a non-RFC 3339 eventTime: {bad_time}, bad CloudTrailEvent: {bad_inner}", file=log)
    return events


# ---------------------------------------------------------------------------------------------------
# Values and patterns


def text(v):
    """The text a pattern is compared with; None for JSON null."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(v)  # bool, int, float


def resolve(event, path):
    """Terminal values of a dotted path (lists met on the way are expanded)."""
    cur = [event]
    for step in path.split("."):
        nxt = []
        for v in cur:
            for obj in flatten(v):
                if isinstance(obj, dict) and step in obj:
                    nxt.append(obj[step])
        cur = nxt
    return cur


def flatten(v):
    if isinstance(v, list):
        for e in v:
            yield from flatten(e)
    else:
        yield v


def any_terminal(terminals, test):
    """test(text) over the terminals: list elements first, then the whole list's text."""
    for t in terminals:
        if isinstance(t, list):
            if any(x is not None and test(text(x)) for x in t) or test(text(t)):
                return True
        elif t is not None and test(text(t)):
            return True
    return False


def wildcard_regex(pattern, cased):
    """A compiled regex for a Sigma plain value with * and ? wildcards and backslash escapes."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if nxt in ("*", "?", "\\"):
                out.append(re.escape(nxt))
                i += 2
            else:
                out.append(re.escape("\\"))
                i += 1
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.DOTALL | (0 if cased else re.IGNORECASE)
    return re.compile("".join(out), flags)


def escape_literal(s):
    """A literal string as a Sigma plain value (so its * ? \\ are not wildcards)."""
    return s.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


NUM_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


def as_number(v):
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and NUM_RE.fullmatch(v):
        return float(v)
    return None


WINDASH = ("-", "/", "\u2013", "\u2014", "\u2015")
WINDASH_RE = re.compile(r"\B[-/]\b")


def windash_variants(s):
    parts = WINDASH_RE.split(s)
    if len(parts) == 1:
        return [s]
    out = []
    for combo in itertools.product(WINDASH, repeat=len(parts) - 1):
        v = parts[0]
        for ch, p in zip(combo, parts[1:]):
            v += ch + p
        out.append(v)
    return out


def base64offset_variants(s):
    b = s.encode("utf-8")
    start, end = (0, 2, 3), (None, -3, -2)
    return [base64.b64encode(i * b" " + b)[start[i]:end[(len(b) + i) % 3]].decode("ascii") for i in range(3)]


# ---------------------------------------------------------------------------------------------------
# Rules


class RuleError(Exception):
    pass


class TextLoader(yaml.SafeLoader):
    """Safe YAML with only null resolved implicitly: numbers, booleans and dates stay text."""


TextLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag == "tag:yaml.org,2002:null"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

KNOWN_MODS = {"contains", "startswith", "endswith", "all", "exists", "re", "i", "m", "s", "cidr", "gt", "gte",
              "lt", "lte", "base64", "base64offset", "windash", "fieldref", "cased"}
TRANSFORMS = {"base64", "base64offset", "windash"}
POSITION = {"contains", "startswith", "endswith"}
NUMERIC = {"gt", "gte", "lt", "lte"}


def field_item(key, value):
    """A predicate event -> bool for one `field|mods: value` entry."""
    if not isinstance(key, str):
        raise RuleError(f"field name {key!r} is not a string")
    field, *mods = key.split("|")
    if not field:
        raise RuleError(f"keyword with modifiers ({key!r}) is not supported")
    for m in mods:
        if m not in KNOWN_MODS:
            raise RuleError(f"unknown modifier '{m}' in '{key}'")
    if len(set(mods)) != len(mods):
        raise RuleError(f"repeated modifier in '{key}'")
    ms = set(mods)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise RuleError(f"empty value list for '{key}'")
    for v in values:
        if v is not None and not isinstance(v, str):
            raise RuleError(f"value of '{key}' is not a scalar: {v!r}")
    if any(v is None for v in values) and mods:
        raise RuleError(f"null value with modifiers in '{key}'")
    cased = "cased" in ms
    use_all = "all" in ms
    pos = ms & POSITION
    if len(pos) > 1:
        raise RuleError(f"conflicting modifiers {sorted(pos)} in '{key}'")
    special = ms & ({"re", "cidr", "exists", "fieldref"} | NUMERIC)
    if len(special) > 1:
        raise RuleError(f"conflicting modifiers {sorted(special)} in '{key}'")
    if ms & {"i", "m", "s"} and "re" not in ms:
        raise RuleError(f"modifiers i/m/s without re in '{key}'")

    def others_allowed(allowed):
        extra = ms - special - allowed
        if extra:
            raise RuleError(f"modifier(s) {sorted(extra)} cannot be combined with {sorted(special)} in '{key}'")

    def combine(preds):
        if use_all:
            return lambda ev: all(p(ev) for p in preds)
        return lambda ev: any(p(ev) for p in preds)

    if "exists" in ms:
        others_allowed(set())
        if len(values) != 1 or values[0].lower() not in ("true", "false"):
            raise RuleError(f"exists needs true or false in '{key}'")
        want = values[0].lower() == "true"
        return lambda ev: (len(resolve(ev, field)) > 0) == want

    if "re" in ms:
        others_allowed({"i", "m", "s", "all"})
        flags = (re.IGNORECASE if "i" in ms else 0) | (re.MULTILINE if "m" in ms else 0) | (
            re.DOTALL if "s" in ms else 0)
        preds = []
        for v in values:
            try:
                rx = re.compile(v, flags)
            except re.error as e:
                raise RuleError(f"invalid regular expression {v!r} in '{key}': {e}")
            preds.append(lambda ev, rx=rx: any_terminal(resolve(ev, field), lambda t: rx.search(t) is not None))
        return combine(preds)

    if "cidr" in ms:
        others_allowed({"all"})
        preds = []
        for v in values:
            try:
                net = ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise RuleError(f"invalid CIDR {v!r} in '{key}'")

            def in_net(t, net=net):
                try:
                    return ipaddress.ip_address(t) in net
                except ValueError:
                    return False

            preds.append(lambda ev, f=in_net: any_terminal(resolve(ev, field), f))
        return combine(preds)

    if special & NUMERIC:
        others_allowed({"all"})
        op = next(iter(special))
        cmp = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}[op]
        preds = []
        for v in values:
            if not NUM_RE.fullmatch(v):
                raise RuleError(f"'{op}' needs a number, got {v!r} in '{key}'")
            bound = float(v)

            def num_pred(ev, bound=bound):
                for t in resolve(ev, field):
                    for x in (t if isinstance(t, list) else [t]):
                        n = as_number(x)
                        if n is not None and cmp(n, bound):
                            return True
                return False

            preds.append(num_pred)
        return combine(preds)

    if "fieldref" in ms:
        others_allowed(POSITION | {"all", "cased"})
        flags = 0 if cased else re.IGNORECASE

        def ref_texts(ev, ref):
            out = []
            for t in resolve(ev, ref):
                if isinstance(t, list):
                    out.extend(text(x) for x in t if x is not None)
                if t is not None:
                    out.append(text(t))
            return out

        def ref_pred(ev, ref):
            pats = []
            for r in ref_texts(ev, ref):
                lit = re.escape(r)
                if "contains" in pos:
                    lit = ".*" + lit + ".*"
                elif "startswith" in pos:
                    lit = lit + ".*"
                elif "endswith" in pos:
                    lit = ".*" + lit
                pats.append(re.compile(lit, flags | re.DOTALL))
            if not pats:
                return False
            return any_terminal(resolve(ev, field), lambda t: any(p.fullmatch(t) for p in pats))

        return combine([lambda ev, ref=v: ref_pred(ev, ref) for v in values])

    # Plain values, with transformations and contains/startswith/endswith.
    preds = []
    for v in values:
        if v is None:
            def null_pred(ev):
                ts = resolve(ev, field)
                return not ts or any(t is None or (isinstance(t, list) and None in t) for t in ts)

            preds.append(null_pred)
            continue
        variants = [v]
        transformed = False
        for m in mods:
            if m == "windash":
                variants = [w for x in variants for w in windash_variants(x)]
            elif m == "base64":
                variants = [base64.b64encode(x.encode("utf-8")).decode("ascii") for x in variants]
                transformed = True
            elif m == "base64offset":
                variants = [w for x in variants for w in base64offset_variants(x)]
                transformed = True
        if transformed:  # base64 text is literal (its alphabet has no wildcard anyway)
            variants = [escape_literal(x) for x in variants]
        if "contains" in pos:
            variants = ["*" + x + "*" for x in variants]
        elif "startswith" in pos:
            variants = [x + "*" for x in variants]
        elif "endswith" in pos:
            variants = ["*" + x for x in variants]
        rxs = [wildcard_regex(x, cased) for x in variants]
        preds.append(lambda ev, rxs=rxs: any_terminal(
            resolve(ev, field), lambda t: any(rx.fullmatch(t) for rx in rxs)))
    return combine(preds)


def string_leaves(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from string_leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from string_leaves(x)


def selection(name, body):
    """A predicate event -> bool for one named detection item."""
    if isinstance(body, dict):
        if not body:
            raise RuleError(f"selection '{name}' is empty")
        items = [field_item(k, v) for k, v in body.items()]
        return lambda ev: all(p(ev) for p in items)
    if isinstance(body, str):
        body = [body]
    if isinstance(body, list) and body:
        if all(isinstance(x, dict) for x in body):
            maps = [selection(name, x) for x in body]
            return lambda ev: any(p(ev) for p in maps)
        if all(isinstance(x, str) for x in body):
            rxs = [wildcard_regex("*" + x + "*", False) for x in body]
            return lambda ev: any(rx.fullmatch(s) for s in string_leaves(ev) for rx in rxs)
        raise RuleError(f"selection '{name}' mixes keywords and maps or holds nulls")
    raise RuleError(f"selection '{name}' has an unsupported shape ({type(body).__name__})")


TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")


def parse_condition(cond, names):
    """A predicate over the dict of selection results, for one condition string."""
    if "|" in cond:
        raise RuleError(f"aggregation in condition {cond!r} is not supported")
    toks = TOKEN_RE.findall(cond)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        if pos >= len(toks):
            raise RuleError(f"condition {cond!r} ends early")
        pos += 1
        return toks[pos - 1]

    def expand(pat):
        if pat.lower() == "them":
            sel = [n for n in names if not n.startswith("_")]
        elif "*" in pat:
            rx = re.compile(".*".join(re.escape(p) for p in pat.split("*")))
            sel = [n for n in names if rx.fullmatch(n)]
        else:
            sel = [n for n in names if n == pat]
        if not sel:
            raise RuleError(f"'{pat}' in condition matches no selection")
        return sel

    def expr():
        left = term()
        while (peek() or "").lower() == "or":
            take()
            r = term()
            left = (lambda a, b: lambda s: a(s) or b(s))(left, r)
        return left

    def term():
        left = factor()
        while (peek() or "").lower() == "and":
            take()
            r = factor()
            left = (lambda a, b: lambda s: a(s) and b(s))(left, r)
        return left

    def factor():
        t = take()
        low = t.lower()
        if low == "not":
            f = factor()
            return lambda s: not f(s)
        if t == "(":
            e = expr()
            if take() != ")":
                raise RuleError(f"condition {cond!r}: ')' expected")
            return e
        if low in ("1", "all") and (peek() or "").lower() == "of":
            take()
            sel = expand(take())
            if low == "1":
                return lambda s: any(s[n] for n in sel)
            return lambda s: all(s[n] for n in sel)
        if low in ("and", "or", "of", ")") or t not in names:
            raise RuleError(f"condition {cond!r}: unexpected '{t}'")
        return lambda s: s[t]

    f = expr()
    if pos != len(toks):
        raise RuleError(f"condition {cond!r}: unexpected '{toks[pos]}'")
    return f


class Rule:
    def __init__(self, doc):
        rid = doc.get("id")
        if not isinstance(rid, str) or not rid:
            raise RuleError("no id")
        self.id = rid
        ls = doc.get("logsource")
        if not isinstance(ls, dict) or str(ls.get("product", "")).lower() != "aws" or \
                str(ls.get("service", "")).lower() != "cloudtrail":
            raise RuleError("not a CloudTrail rule")
        det = doc.get("detection")
        if not isinstance(det, dict) or "condition" not in det:
            raise RuleError("no detection with a condition")
        self.selections = {}
        for name, body in det.items():
            if name in ("condition", "timeframe"):
                continue
            self.selections[str(name)] = selection(str(name), body)
        conds = det["condition"]
        conds = conds if isinstance(conds, list) else [conds]
        if not conds or not all(isinstance(c, str) for c in conds):
            raise RuleError("condition is not a string or a list of strings")
        self.conditions = [parse_condition(c, list(self.selections)) for c in conds]

    def matches(self, event):
        cache = {}

        class Lazy(dict):
            def __missing__(_, n):
                cache[n] = self.selections[n](event)
                return cache[n]

        s = Lazy()
        return any(c(s) for c in self.conditions)


def rule_files(paths):
    for top in paths:
        for p in walk(top):
            if p.lower().endswith((".yml", ".yaml")) or not os.path.isdir(top):
                yield p


def load_rules(paths):
    rules, failed, ids = [], [], set()
    for path in rule_files(paths):
        try:
            with open(path, encoding="utf-8") as f:
                docs = list(yaml.load_all(f, Loader=TextLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            failed.append({"file": path, "reason": f"invalid YAML: {str(e).splitlines()[0]}"})
            continue
        docs = [d for d in docs if d is not None]
        if not docs:
            failed.append({"file": path, "reason": "empty file"})
        for doc in docs:
            if not isinstance(doc, dict):
                failed.append({"file": path, "reason": "a YAML document is not a map"})
            elif "correlation" in doc:
                failed.append({"file": path, "reason": "correlation not evaluated by the reference script"})
            elif "action" in doc:
                failed.append({"file": path, "reason": "rule collection action not supported"})
            else:
                try:
                    rule = Rule(doc)
                    if rule.id in ids:
                        raise RuleError(f"duplicate id {rule.id}")
                except RuleError as e:
                    failed.append({"file": path, "reason": str(e)})
                    continue
                ids.add(rule.id)
                rules.append(rule)
    return rules, failed


def hunt(rules, events):
    hits = []
    for ev, eid, t in events:
        for r in rules:
            if r.matches(ev):
                hits.append({"rule_id": r.id, "event_id": eid, "event_time": t})
    hits.sort(key=lambda h: (h["event_time"], h["event_id"] is not None, h["event_id"] or "", h["rule_id"]))
    return hits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", action="append", required=True, metavar="DIR_OR_FILE")
    ap.add_argument("inputs", nargs="+", metavar="INPUT")
    a = ap.parse_args(argv)
    rules, failed = load_rules(a.rules)
    events = load_events(a.inputs)
    out = {"hits": hunt(rules, events), "rules_loaded": sorted(r.id for r in rules), "rules_failed": failed}
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
