#!/usr/bin/env python3
"""Compute the expected answers of `trailscope sessions` on the real CloudTrail data in testdata/,
independently of the Rust code (Python 3 standard library only), into testdata/golden/sessions/.

It reads the raw JSON records with the reader of scripts/golden_questions.py (the same walk, shapes and
de-duplication by eventID, all written in Python from the README) and computes the README's rule
("trailscope sessions") with plain loops:
  * an issuing call: eventSource sts.amazonaws.com, eventName AssumeRole, AssumeRoleWithSAML,
    AssumeRoleWithWebIdentity (subject: requestParameters.roleArn, type Role), GetSessionToken or
    GetFederationToken (subject: userIdentity.arn, type userIdentity.type), without an errorCode;
  * requested: requestParameters.durationSeconds (an integer, or a string of one), else AWS's default
    (3600 for AssumeRole*, 43200 for GetSessionToken/GetFederationToken), counted as defaulted;
  * a session's key: responseElements.credentials.accessKeyId; its use: the last minus the first
    eventTime of the events whose userIdentity.accessKeyId is that key, in whole seconds (floor);
  * typical = the lower median; over_requested = some session was used and requested_max >= 4 * used_max
    and requested_max - used_max >= 3600;
  * rows: over_requested first, then sessions descending, then principal (nulls last).

Usage: scripts/golden_sessions.py [--check]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_questions as gq  # noqa: E402  (cds to the repository root)

OUT = "testdata/golden/sessions"
DEFAULTS = {"AssumeRole": 3600, "AssumeRoleWithSAML": 3600, "AssumeRoleWithWebIdentity": 3600,
            "GetSessionToken": 43200, "GetFederationToken": 43200}


def duration(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def lower_median(values):
    if not values:
        return None
    v = sorted(values)
    return v[(len(v) - 1) // 2]


def sessions(events):
    subjects = {}  # principal -> dict
    order = []
    issues = []
    use = {}  # key -> [first, last]
    for r in events:
        key = r["access_key_id"]
        if isinstance(key, str) and key.startswith("ASIA"):
            first, last = use.get(key, (r["ms"], r["ms"]))
            use[key] = (min(first, r["ms"]), max(last, r["ms"]))
        name = r["event_name"]
        if r["event_source"] != "sts.amazonaws.com" or name not in DEFAULTS or gq.present(r["error_code"]):
            continue
        req = gq.obj(r["request_parameters"])
        resp = gq.obj(r["response_elements"])
        if name.startswith("AssumeRole"):
            principal = req.get("roleArn") if isinstance(req.get("roleArn"), str) else None
            ptype = "Role"
        else:
            principal = r["arn"] or None
            ptype = r["identity_type"]
        if principal not in subjects:
            subjects[principal] = {"type": ptype, "calls": set()}
            order.append(principal)
        subjects[principal]["calls"].add(name)
        asked = duration(req.get("durationSeconds"))
        k = gq.obj(resp.get("credentials")).get("accessKeyId")
        issues.append((principal, asked if asked is not None else DEFAULTS[name], asked is None,
                       k if isinstance(k, str) and k else None))
    rows = []
    for p in order:
        mine = [i for i in issues if i[0] == p]
        requested = [i[1] for i in mine]
        defaulted = sum(1 for i in mine if i[2])
        used = [(use[i[3]][1] - use[i[3]][0]) // 1000 for i in mine if i[3] in use]
        rmax = max(requested)
        umax = max(used) if used else None
        over = umax is not None and rmax >= 4 * umax and rmax - umax >= 3600
        notes = []
        if defaulted:
            notes.append(f"{defaulted} session(s) without durationSeconds: AWS's default assumed")
        if not used:
            notes.append("no session seen used in these events")
        if over:
            notes.append(f"requested up to {rmax} s, used at most {umax} s: lower the role's maximum session "
                         f"duration (or the DurationSeconds asked for)")
        rows.append({
            "principal": p, "principal_type": subjects[p]["type"],
            "issued_by": ", ".join(sorted(subjects[p]["calls"])), "sessions": len(mine),
            "sessions_default_duration": defaulted, "requested_max_s": rmax,
            "requested_typical_s": lower_median(requested), "sessions_used": len(used), "used_max_s": umax,
            "used_typical_s": lower_median(used), "over_requested": over, "note": "; ".join(notes) or None,
        })
    rows.sort(key=lambda r: (not r["over_requested"], -r["sessions"], r["principal"] is None, r["principal"] or ""))
    return rows


def cases():
    j = ["--format", "json"]
    invictus, _ = gq.load(gq.INVICTUS)
    stratus, _ = gq.load(gq.STRATUS)
    both, _ = gq.load(gq.INVICTUS, gq.STRATUS)
    yield "sessions-invictus", ["sessions", gq.INVICTUS, *j], sessions(invictus)
    yield "sessions-stratus", ["sessions", gq.STRATUS, *j], sessions(stratus)
    yield "sessions-both", ["sessions", gq.INVICTUS, gq.STRATUS, *j], sessions(both)


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    stale = []
    for name, args, rows in cases():
        text = json.dumps({"case": name, "args": args, "exit_code": 0, "format": "json", "expect": rows},
                          indent=2, ensure_ascii=False) + "\n"
        path = os.path.join(OUT, name + ".json")
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            stale.append(path)
            if not check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    if check and stale:
        sys.exit("golden files out of date: " + ", ".join(stale))
    print("golden files are up to date" if check else "written: " + (", ".join(stale) or "nothing (no change)"))


if __name__ == "__main__":
    main()
