#!/usr/bin/env python3
"""Lint IAM policy documents with parliament (PyPI, duo-labs), independently of trailscope.

Usage: policy_lint.py FILE...  Each file holds one policy document or a JSON list of them. Prints one
JSON object per finding ({"file", "issue", "group", "severity", "detail"}) and exits 1 when any finding
is an error: parliament's group INVALID (unknown actions or prefixes, malformed statements, resources
that do not fit their action, bad conditions); 0 otherwise. Advice about what the granted actions allow
(e.g. RESOURCE_POLICY_PRIVILEGE_ESCALATION, RESOURCE_STAR) is printed but is not an error: a
least-privilege policy grants what was used, risky or not.
"""
import json
import sys

import parliament
from parliament import analyze_policy_string

def main(paths):
    serious = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            policy = analyze_policy_string(json.dumps(d))
            for finding in policy.findings:
                cfg = parliament.config.get(finding.issue, {})
                severity, group = str(cfg.get("severity", "")).upper(), cfg.get("group", "")
                print(json.dumps({"file": path, "issue": finding.issue, "group": group, "severity": severity,
                                  "detail": str(finding.detail)}))
                if group == "INVALID":
                    serious += 1
    return 1 if serious else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
