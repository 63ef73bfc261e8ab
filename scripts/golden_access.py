#!/usr/bin/env python3
"""Compute the expected answers of issue #14's access questions (`trailscope sessions`, `trailscope unused
--roles`) on the real CloudTrail data in testdata/, independently of the Rust code (Python 3 standard
library only), into testdata/golden/access/.

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

`unused --roles` (README, "trailscope unused"): for each role of the IAM snapshot, the events made with its
sessions (userIdentity.type AssumedRole whose sessionContext.sessionIssuer.principalId is the RoleId, else
whose sessionIssuer.arn is the role's Arn), their count and the last eventTime; RoleLastUsed's LastUsedDate
and Region as the snapshot writes them; status "used in the window" (events), "used outside the window
(RoleLastUsed)" (no event, a LastUsedDate), "never used in the window"; rows by that status (never used
first), then role ARN.

`activity --by person|permission-set` (README, "trailscope activity"): the events of IAM Identity Center
sessions (userIdentity.type AssumedRole whose sessionContext.sessionIssuer.userName starts with
"AWSReservedSSO_") and, for --by person, IdentityCenterUser events; the person is the last "/"-segment of
userIdentity.arn (an IdentityCenterUser's: onBehalfOf.userId), the permission set the issuer's name without
the prefix and the last "_<suffix>". Each row has activity's columns computed by golden_questions.py (the
first renamed) except account_id: account_count, the distinct non-empty userIdentity.accountId values, and
accounts, those values sorted and joined by ",".

Usage: scripts/golden_access.py [--check]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_questions as gq  # noqa: E402  (cds to the repository root)

OUT = "testdata/golden/access"
IDENTITY_CENTER = "testdata/identity-center"
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


def raw_records(*inputs):
    """The raw records after de-duplication by (eventID, eventTime, account, region), as
    golden_questions.load keeps them."""
    seen = set()
    for top in inputs:
        for path in gq.walk(top):
            if {"CloudTrail-Digest", "CloudTrail-Insight"} & set(path.split("/")):
                continue
            for rec in gq.records_of(path) or []:
                ms = gq.time_ms(rec.get("eventTime"))
                if ms is None:
                    continue
                eid = gq.nonempty(gq.leaf(rec.get("eventID")))
                if eid is not None:
                    ui = rec.get("userIdentity") if isinstance(rec.get("userIdentity"), dict) else {}
                    recipient = gq.leaf(rec.get("recipientAccountId"))
                    account = recipient if recipient is not None else gq.leaf(ui.get("accountId"))
                    key = (eid, ms, account or None, gq.leaf(rec.get("awsRegion")) or None)
                    if key in seen:
                        continue
                    seen.add(key)
                yield ms, rec


def unused_roles(authz_path, *inputs):
    with open(authz_path, encoding="utf-8") as f:
        roles = json.load(f)["RoleDetailList"]
    by_id = {r["RoleId"]: i for i, r in enumerate(roles)}
    by_arn = {r["Arn"]: i for i, r in enumerate(roles)}
    events, last = [0] * len(roles), [None] * len(roles)
    for ms, rec in raw_records(*inputs):
        ui = gq.obj(rec.get("userIdentity"))
        if ui.get("type") != "AssumedRole":
            continue
        issuer = gq.obj(gq.obj(ui.get("sessionContext")).get("sessionIssuer"))
        i = by_id.get(issuer.get("principalId"))
        if i is None:
            i = by_arn.get(issuer.get("arn"))
        if i is None:
            continue
        events[i] += 1
        last[i] = ms if last[i] is None else max(last[i], ms)
    rows = []
    for i, r in enumerate(roles):
        lu = gq.obj(r.get("RoleLastUsed"))
        date = lu.get("LastUsedDate") if isinstance(lu.get("LastUsedDate"), str) and lu.get("LastUsedDate") else None
        region = lu.get("Region") if isinstance(lu.get("Region"), str) and lu.get("Region") else None
        rank = 2 if events[i] else (1 if date else 0)
        rows.append((rank, r["Arn"], {
            "role": r["Arn"], "name": r["RoleName"], "events": events[i], "last_used_in_events": gq.fmt_ms(last[i]),
            "role_last_used_date": date, "role_last_used_region": region,
            "status": ["never used in the window", "used outside the window (RoleLastUsed)",
                       "used in the window"][rank],
        }))
    rows.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in rows]


SSO_PREFIX = "AWSReservedSSO_"


def identity_center_activity(events, by):
    """`activity --by person` (by="person") or `--by permission-set` (by="permission_set")."""
    keyed = []
    for r in events:
        issuer = r["session_issuer_user_name"] or ""
        key = None
        if r["identity_type"] == "AssumedRole" and issuer.startswith(SSO_PREFIX):
            if by == "person":
                key = (r["arn"] or "").rsplit("/", 1)[-1] or None
            else:
                rest = issuer[len(SSO_PREFIX):]
                key = (rest.rsplit("_", 1)[0] if "_" in rest else None) or None
        elif r["identity_type"] == "IdentityCenterUser" and by == "person":
            p = r["principal"] or ""
            key = p.split("identitystore:::user/", 1)[1] if "identitystore:::user/" in p else None
        else:
            continue
        keyed.append(dict(r, principal=key))
    rows = []
    for row in gq.activity_rows(keyed):
        accounts = sorted({r["account_id"] for r in keyed if r["principal"] == row["principal"] and r["account_id"]})
        out = {by: row["principal"]}
        for k, v in row.items():
            if k == "account_id":
                out["account_count"] = len(accounts)
                out["accounts"] = ",".join(accounts)
            elif k != "principal":
                out[k] = v
        rows.append(out)
    return rows


def cases():
    j = ["--format", "json"]
    invictus, _ = gq.load(gq.INVICTUS)
    stratus, _ = gq.load(gq.STRATUS)
    both, _ = gq.load(gq.INVICTUS, gq.STRATUS)
    yield "sessions-invictus", ["sessions", gq.INVICTUS, *j], sessions(invictus)
    yield "sessions-stratus", ["sessions", gq.STRATUS, *j], sessions(stratus)
    yield "sessions-both", ["sessions", gq.INVICTUS, gq.STRATUS, *j], sessions(both)
    for name, authz in [("unused-roles-invictus", "testdata/iam/invictus-authz.json"),
                        ("unused-roles-invictus-lastused", "testdata/iam/invictus-authz-lastused.json")]:
        yield name, ["unused", "--iam", authz, gq.INVICTUS, "--roles", *j], unused_roles(authz, gq.INVICTUS)
    ic, _ = gq.load(IDENTITY_CENTER)
    for by in ["person", "permission-set"]:
        yield (f"activity-by-{by}-identity-center", ["activity", IDENTITY_CENTER, "--by", by, *j],
               identity_center_activity(ic, by.replace("-", "_")))


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    stale = []
    for name, args, rows in cases():
        path = os.path.join(OUT, name + ".json")
        doc = {"case": name, "args": args, "exit_code": 0, "format": "json", "expect": rows}
        if not gq.refresh(path, doc, check):
            stale.append(path)
    if check and stale:
        sys.exit("golden files out of date: " + ", ".join(stale))
    print("golden files are up to date" if check else "written: " + (", ".join(stale) or "nothing (no change)"))


if __name__ == "__main__":
    main()
