#!/usr/bin/env python3
"""Check the resources of a least-privilege policy against the raw events, independently of trailscope.

Usage: policy_resources.py EVENTS_DIR USER POLICY_FILE AUTHZ_FILE

For each action of the policy (one document or a JSON list of them), computes from the raw CloudTrail
files the resources the IAM user USER's calls of that action named, by the rules the README documents
for `unused --policy`, written here again from the documentation (not from the Rust code):

- the calls: events of USER (userIdentity type IAMUser) that are calls (not AwsServiceEvent /
  AwsConsoleSignIn), succeeded, or failed after authorization (NoSuch*, *NotFound*, *NotEmpty,
  *AlreadyExist*, *LimitExceeded but not RequestLimitExceeded, *InvalidState*, *InUse*, *Conflict*,
  *DryRunOperation); denied calls and throttling do not count;
- the action of a call: `prefix:eventName` without the API version suffix, with the S3 renames of the
  Service Authorization Reference that these events need (RENAMES below);
- the resources a call names: the ARNs of its `resources` field, and ARNs built from request
  parameters (S3 bucketName/key; IAM userName/roleName/instanceProfileName: the ARN the snapshot
  AUTHZ_FILE gives the user or role, else the create call's path, else the name under any path; policyArn;
  Lambda functionName; KMS keyId when an ARN; Secrets Manager secretId, or name as NAME-??????;
  CloudTrail name/trailName; EC2 instanceId, instancesSet, volumeId, snapshotId, imageId);
- which of them scope the action: those that fit one of its resource types, by parliament's own copy
  of the Service Authorization Reference and its `is_arn_match`.

The policy must grant an action on exactly those ARNs when every call of it named one (and one of each
required type), and on "*" otherwise. Prints each mismatch and exits 1 when there is one; prints a
summary line otherwise.
"""
import glob
import json
import os
import re
import sys

import parliament
from parliament.statement import get_arn_format

RENAMES = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:GetBucketCors": "s3:GetBucketCORS",
    "s3:ListObjects": "s3:ListBucket",
}
PREFIXES = {"monitoring": "cloudwatch", "servicecatalog-appregistry": "servicecatalog"}
AFTER_AUTH = re.compile(
    r"^(NoSuch.*|.*NotFound.*|.*NotEmpty|.*AlreadyExist.*|.*LimitExceeded|.*InvalidState.*|.*InUse.*|.*Conflict.*|.*DryRunOperation)$"
)


def used(code):
    if not code:
        return True
    bare = re.sub(r"^(Client|Server)\.", "", code)
    if bare == "RequestLimitExceeded" or "Throttl" in bare:
        return False
    return bool(AFTER_AUTH.match(bare))


def action_of(e):
    prefix = e["eventSource"].split(".amazonaws.com")[0]
    prefix = PREFIXES.get(prefix, prefix.split(".")[0])
    name = re.sub(r"(\d{8}(v\d+)?|\d{4}_\d{2}_\d{2})$", "", e["eventName"])
    a = f"{prefix}:{name}"
    return RENAMES.get(a, a)


KNOWN = {}  # (account, kind, name) -> ARN, from the authorization details


def named(e):
    out = [r["ARN"] for r in e.get("resources") or [] if r.get("ARN")]
    p = e.get("requestParameters") or {}
    if not isinstance(p, dict):
        return out
    svc = e["eventSource"].split(".")[0]
    region, acct = e.get("awsRegion"), e.get("recipientAccountId") or e["userIdentity"].get("accountId")
    reg = lambda rest: f"arn:aws:{svc}:{region}:{acct}:{rest}"
    arn_or = lambda v, f: v if v.startswith("arn:") else f(v)
    if svc == "s3" and p.get("bucketName"):
        out.append(f"arn:aws:s3:::{p['bucketName']}")
        if p.get("key"):
            out.append(f"arn:aws:s3:::{p['bucketName']}/{p['key']}")
    if svc == "iam":
        for key, kind in (("userName", "user"), ("roleName", "role"), ("groupName", "group"), ("instanceProfileName", "instance-profile")):
            if p.get(key):
                if (acct, kind, p[key]) in KNOWN:
                    out.append(KNOWN[(acct, kind, p[key])])
                elif p.get("path"):
                    out.append(f"arn:aws:iam::{acct}:{kind}{p['path']}{p[key]}")
                else:
                    out += [f"arn:aws:iam::{acct}:{kind}/{p[key]}", f"arn:aws:iam::{acct}:{kind}/*/{p[key]}"]
        if p.get("policyArn"):
            out.append(p["policyArn"])
    if svc == "lambda" and p.get("functionName"):
        out.append(arn_or(p["functionName"], lambda f: reg(f"function:{f}")))
    if svc == "kms" and str(p.get("keyId", "")).startswith("arn:"):
        out.append(p["keyId"])
    if svc == "secretsmanager":
        if p.get("secretId"):
            out.append(arn_or(p["secretId"], lambda s: reg(f"secret:{s}-??????")))
        elif p.get("name"):
            out.append(reg(f"secret:{p['name']}-??????"))
    if svc == "cloudtrail":
        for key in ("name", "trailName"):
            if p.get(key):
                out.append(arn_or(p[key], lambda t: reg(f"trail/{t}")))
    if svc == "ec2":
        ids = [p["instanceId"]] if p.get("instanceId") else []
        ids += [i["instanceId"] for i in (p.get("instancesSet") or {}).get("items", []) if i.get("instanceId")]
        out += [reg(f"instance/{i}") for i in ids]
        if p.get("volumeId"):
            out.append(reg(f"volume/{p['volumeId']}"))
        for key, kind in (("snapshotId", "snapshot"), ("imageId", "image")):
            if p.get(key):
                out.append(f"arn:aws:ec2:{region}::{kind}/{p[key]}")
    return list(dict.fromkeys(out))


def resource_types(action):
    """[(type, format, required)] of an action, from parliament's iam_definition.json."""
    prefix, name = action.split(":")
    for svc in parliament.iam_definition:
        if svc["prefix"] != prefix:
            continue
        for priv in svc["privileges"]:
            if priv["privilege"].lower() == name.lower():
                out = []
                for rt in priv["resource_types"]:
                    t = rt["resource_type"]
                    if t:
                        out.append((t.rstrip("*"), get_arn_format(t, svc["resources"]), t.endswith("*")))
                return out
    return []


def main(events_dir, user, policy_path, authz_path):
    authz = json.load(open(authz_path))
    for kind, key, name in (("user", "UserDetailList", "UserName"), ("role", "RoleDetailList", "RoleName")):
        for x in authz.get(key, []):
            KNOWN[(x["Arn"].split(":")[4], kind, x[name])] = x["Arn"]
    events = []
    for path in sorted(glob.glob(os.path.join(events_dir, "**", "*.json"), recursive=True)):
        events += json.load(open(path))["Records"]
    calls = {}
    for e in events:
        ui = e.get("userIdentity") or {}
        if ui.get("type") != "IAMUser" or ui.get("userName") != user:
            continue
        if e.get("eventType") in ("AwsServiceEvent", "AwsConsoleSignIn") or not used(e.get("errorCode")):
            continue
        calls.setdefault(action_of(e).lower(), []).append(named(e))

    doc = json.load(open(policy_path))
    granted = {}
    for d in doc if isinstance(doc, list) else [doc]:
        for s in d["Statement"]:
            res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for a in s["Action"]:
                granted.setdefault(a, set()).update(res)

    bad, scoped = 0, 0
    for action, res in sorted(granted.items()):
        types = resource_types(action)
        want, every = set(), True
        for arns in calls.get(action.lower(), []):
            fit = {(t, a) for t, fmt, _ in types for a in arns if parliament.is_arn_match(t, fmt, a)}
            required = {t for t, _, r in types if r}
            if not fit or not required <= {t for t, _ in fit}:
                every = False
            want |= {a for _, a in fit}
        expected = want if (types and every and want and action.lower() in calls) else {"*"}
        if res != expected:
            bad += 1
            print(f"{action}: policy {sorted(res)} != events {sorted(expected)}")
        scoped += expected != {"*"}
    print(f"{len(granted)} actions checked, {scoped} scoped to resources, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
