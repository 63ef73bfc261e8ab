#!/usr/bin/env python3
"""Unit tests of the reference Sigma evaluator's semantics (scripts/sigma_expected.py).

Run: python3 scripts/sigma_expected_test.py   (needs PyYAML, see scripts/test-requirements.txt)
"""
import gzip
import io
import json
import os
import sys
import tempfile
import textwrap
import unittest
from contextlib import redirect_stderr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigma_expected as se  # noqa: E402

EVENT = {
    "eventVersion": "1.08",
    "eventTime": "2023-07-10T11:45:00Z",
    "eventID": "e1",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateAccessKey",
    "sourceIPAddress": "10.1.2.3",
    "userAgent": "aws-cli/2.0 Python/3.11 -Command x",
    "userIdentity": {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123:assumed-role/Admin/alice",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123:role/Admin"},
                           "attributes": {"mfaAuthenticated": "false"}},
    },
    "requestParameters": {"userName": "Alice", "count": 5, "ratio": 1.5, "flag": True, "size": "42",
                          "nothing": None, "path": "C:\\Temp\\a*b?.txt",
                          "layers": ["arn:layer:1", "arn:layer:2"],
                          "items": [{"name": "a", "tags": ["x", "y"]}, {"name": "b"}],
                          "empty": "", "emptyList": []},
    "responseElements": {"accessKey": {"userName": "alice"}},
}


def rule(detection, extra=""):
    text = textwrap.dedent("""\
        title: t
        id: r1
        logsource:
            product: aws
            service: cloudtrail
        {extra}detection:
        """).format(extra=extra) + textwrap.indent(textwrap.dedent(detection), "    ")
    doc = se.yaml.load(text, Loader=se.TextLoader)
    return se.Rule(doc)


def hit(detection, event=EVENT):
    return rule(detection).matches(event)


def fails(detection):
    try:
        rule(detection)
    except se.RuleError as e:
        return str(e)
    return None


class Values(unittest.TestCase):
    def test_equality_is_case_insensitive_and_whole_value(self):
        self.assertTrue(hit("sel:\n    eventName: createaccesskey\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName: CreateAccess\ncondition: sel"))

    def test_cased(self):
        self.assertFalse(hit("sel:\n    eventName|cased: createaccesskey\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName|cased: CreateAccessKey\ncondition: sel"))

    def test_wildcards(self):
        self.assertTrue(hit("sel:\n    eventName: 'create*key'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName: 'CreateAcc?ssKey'\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName: 'CreateAcc?sKey'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName: '*'\ncondition: sel"))

    def test_escapes(self):
        # C:\Temp\a*b?.txt: backslash before T and a is literal, \* and \? are literal * and ?
        self.assertTrue(hit(r"""sel:
    requestParameters.path: 'C:\Temp\a\*b\?.txt'
condition: sel"""))
        self.assertFalse(hit(r"""sel:
    requestParameters.path: 'C:\Temp\aX\*b\?.txt'
condition: sel"""))
        self.assertTrue(hit(r"""sel:
    requestParameters.path: 'C:\\Temp\\a*'
condition: sel"""))
        rx = se.wildcard_regex("a\\*b", False)
        self.assertTrue(rx.fullmatch("a*b"))
        self.assertFalse(rx.fullmatch("aXb"))
        rx = se.wildcard_regex("a\\\\*", False)  # \\ is one backslash, then * is a wildcard
        self.assertTrue(rx.fullmatch("a\\anything"))
        rx = se.wildcard_regex("end\\", False)
        self.assertTrue(rx.fullmatch("end\\"))

    def test_numbers_and_booleans_as_json_text(self):
        self.assertTrue(hit("sel:\n    requestParameters.count: 5\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.ratio: '1.5'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.flag: true\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.flag: 'TRUE'\ncondition: sel"))
        self.assertFalse(hit("sel:\n    requestParameters.count: '5.0'\ncondition: sel"))

    def test_objects_compare_as_sorted_compact_json(self):
        self.assertTrue(hit("""sel:
    responseElements: '{"accessKey":{"userName":"alice"}}'
condition: sel"""))
        self.assertTrue(hit("sel:\n    requestParameters|contains: '\"count\":5,\"empty\":\"\",\"emptyList\":[],\"flag\":true'\ncondition: sel"))

    def test_null_and_empty(self):
        self.assertTrue(hit("sel:\n    errorCode: null\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.nothing: null\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName: null\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.empty: ''\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName: ''\ncondition: sel"))
        self.assertFalse(hit("sel:\n    errorCode: ''\ncondition: sel"))
        self.assertFalse(hit("sel:\n    requestParameters.nothing: ''\ncondition: sel"))

    def test_value_list_any_and_all(self):
        self.assertTrue(hit("sel:\n    eventName: [Foo, CreateAccessKey]\ncondition: sel"))
        self.assertTrue(hit("sel:\n    userAgent|contains|all: [aws-cli, python]\ncondition: sel"))
        self.assertFalse(hit("sel:\n    userAgent|contains|all: [aws-cli, java]\ncondition: sel"))


class Paths(unittest.TestCase):
    def test_deep_path(self):
        self.assertTrue(hit("sel:\n    userIdentity.sessionContext.sessionIssuer.type: role\ncondition: sel"))

    def test_list_in_the_middle_any_element(self):
        self.assertTrue(hit("sel:\n    requestParameters.items.name: b\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.items.tags: y\ncondition: sel"))
        self.assertFalse(hit("sel:\n    requestParameters.items.name: c\ncondition: sel"))
        # one element lacks `tags`: the path still exists, so it is not null
        self.assertFalse(hit("sel:\n    requestParameters.items.tags: null\ncondition: sel"))

    def test_list_at_the_end_elements_then_whole_text(self):
        self.assertTrue(hit("sel:\n    requestParameters.layers: 'arn:layer:2'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.layers: '[\"arn:layer:1\",\"arn:layer:2\"]'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.emptyList: '[]'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.layers|contains|all: [':1', ':2']\ncondition: sel"))


class Modifiers(unittest.TestCase):
    def test_contains_startswith_endswith_keep_wildcards(self):
        self.assertTrue(hit("sel:\n    eventName|contains: access\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName|startswith: create\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName|endswith: KEY\ncondition: sel"))
        self.assertTrue(hit("sel:\n    eventName|startswith: 'c*ess'\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName|endswith: Access\ncondition: sel"))

    def test_exists(self):
        self.assertTrue(hit("sel:\n    requestParameters.userName|exists: true\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.nothing|exists: true\ncondition: sel"))
        self.assertTrue(hit("sel:\n    errorCode|exists: false\ncondition: sel"))
        self.assertFalse(hit("sel:\n    errorCode|exists: true\ncondition: sel"))
        self.assertTrue(fails("sel:\n    errorCode|exists: maybe\ncondition: sel"))

    def test_re(self):
        self.assertTrue(hit("sel:\n    userIdentity.arn|re: ':assumed-role/Adm.n/'\ncondition: sel"))
        self.assertFalse(hit("sel:\n    userIdentity.arn|re: ':ASSUMED-role/'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    userIdentity.arn|re|i: ':ASSUMED-role/'\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.count|re: '^5$'\ncondition: sel"))
        self.assertTrue(fails("sel:\n    eventName|re: '('\ncondition: sel"))
        self.assertTrue(fails("sel:\n    eventName|i: 'x'\ncondition: sel"))

    def test_cidr(self):
        self.assertTrue(hit("sel:\n    sourceIPAddress|cidr: 10.0.0.0/8\ncondition: sel"))
        self.assertFalse(hit("sel:\n    sourceIPAddress|cidr: 192.168.0.0/16\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName|cidr: 10.0.0.0/8\ncondition: sel"))
        self.assertTrue(fails("sel:\n    sourceIPAddress|cidr: nonsense\ncondition: sel"))

    def test_numeric(self):
        self.assertTrue(hit("sel:\n    requestParameters.count|gt: 4\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.count|gte: 5\ncondition: sel"))
        self.assertFalse(hit("sel:\n    requestParameters.count|lt: 5\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.ratio|lte: 1.5\ncondition: sel"))
        self.assertTrue(hit("sel:\n    requestParameters.size|gt: 41\ncondition: sel"))  # numeric string
        self.assertFalse(hit("sel:\n    requestParameters.flag|gt: 0\ncondition: sel"))  # boolean
        self.assertFalse(hit("sel:\n    eventName|gt: 0\ncondition: sel"))
        self.assertTrue(fails("sel:\n    eventName|gt: abc\ncondition: sel"))

    def test_base64_and_offset(self):
        ev = dict(EVENT, userAgent="x " + __import__("base64").b64encode(b"evil").decode() + " y")
        self.assertTrue(hit("sel:\n    userAgent|base64|contains: evil\ncondition: sel", ev))
        self.assertFalse(hit("sel:\n    userAgent|base64: evil\ncondition: sel", ev))
        b = __import__("base64")
        for prefix in (b"", b"a", b"ab"):
            enc = b.b64encode(prefix + b"secret payload").decode()
            e2 = dict(EVENT, userAgent=enc)
            self.assertTrue(hit("sel:\n    userAgent|base64offset|contains: 'secret payload'\ncondition: sel", e2),
                            prefix)

    def test_windash(self):
        self.assertEqual(len(se.windash_variants("a -b /c")), 25)
        self.assertTrue(hit("sel:\n    userAgent|windash|contains: ' /command'\ncondition: sel"))
        ev = dict(EVENT, userAgent="run \u2013Command x")
        self.assertTrue(hit("sel:\n    userAgent|windash|contains: ' -command'\ncondition: sel", ev))

    def test_fieldref(self):
        self.assertTrue(hit("sel:\n    requestParameters.userName|fieldref: responseElements.accessKey.userName"
                            "\ncondition: sel"))
        self.assertFalse(hit("sel:\n    requestParameters.userName|fieldref|cased: "
                             "responseElements.accessKey.userName\ncondition: sel"))
        self.assertTrue(hit("sel:\n    userIdentity.arn|fieldref|endswith: responseElements.accessKey.userName"
                            "\ncondition: sel"))
        self.assertFalse(hit("sel:\n    eventName|fieldref: no.such.field\ncondition: sel"))

    def test_unknown_modifier_fails(self):
        self.assertIn("unknown modifier 'wide'", fails("sel:\n    eventName|wide: x\ncondition: sel"))
        self.assertTrue(fails("sel:\n    eventName|contains|startswith: x\ncondition: sel"))
        self.assertTrue(fails("sel:\n    eventName|contains: null\ncondition: sel"))


class KeywordsAndConditions(unittest.TestCase):
    def test_keywords_any_string_leaf(self):
        self.assertTrue(hit("kw:\n    - nomatch\n    - 'layer:2'\ncondition: kw"))
        self.assertTrue(hit("kw:\n    - ALICE\ncondition: kw"))
        self.assertFalse(hit("kw:\n    - requestParameters\ncondition: kw"))  # keys are not leaves
        self.assertFalse(hit("kw:\n    - '1.5'\ncondition: kw"))  # numbers are not string leaves

    def test_list_of_maps_is_or(self):
        self.assertTrue(hit("sel:\n    - eventName: x\n    - eventSource: iam.amazonaws.com\ncondition: sel"))
        self.assertFalse(hit("sel:\n    - eventName: x\n    - eventSource: y\ncondition: sel"))

    def test_precedence_and_quantifiers(self):
        d = "a:\n    eventName: CreateAccessKey\nb:\n    eventName: x\nc_1:\n    eventSource: y\n"
        self.assertTrue(hit(d + "condition: a or b and c_1"))
        self.assertFalse(hit(d + "condition: (a or b) and c_1"))
        self.assertTrue(hit(d + "condition: not b and a"))
        self.assertFalse(hit(d + "condition: not (b or a)"))
        self.assertTrue(hit(d + "condition: 1 of them"))
        self.assertFalse(hit(d + "condition: all of them"))
        self.assertTrue(hit(d + "condition: a and not 1 of c_*"))
        self.assertTrue(hit(d + "condition:\n    - b\n    - a"))
        self.assertTrue(hit("a:\n    eventName: CreateAccessKey\n_x:\n    eventName: no\ncondition: all of them"))
        self.assertTrue(fails(d + "condition: a and zz"))
        self.assertTrue(fails(d + "condition: 1 of zz*"))
        self.assertTrue(fails(d + "condition: a | count() > 5"))

    def test_logsource_and_correlation(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "a.yml"), "w") as f:
                f.write("title: a\nid: x1\nlogsource: {product: windows, service: security}\n"
                        "detection: {sel: {EventID: 1}, condition: sel}\n")
            with open(os.path.join(tmp, "b.yml"), "w") as f:
                f.write("title: b\nid: x2\ncorrelation: {type: event_count, rules: [x1], "
                        "timespan: 1h, condition: {gte: 2}}\n")
            with open(os.path.join(tmp, "c.yml"), "w") as f:
                f.write("title: c\nid: x3\nlogsource: {product: aws, service: cloudtrail}\n"
                        "detection: {sel: {eventName: CreateAccessKey}, condition: sel}\n")
            rules, failed = se.load_rules([tmp])
        self.assertEqual([r.id for r in rules], ["x3"])
        self.assertEqual([f["reason"] for f in failed],
                         ["not a CloudTrail rule", "correlation not evaluated by the reference script"])


class Reading(unittest.TestCase):
    def test_dedup_and_missing_time(self):
        recs = [
            dict(EVENT),
            dict(EVENT),  # same id and time: duplicate
            dict(EVENT, eventTime="2023-07-10T11:45:00.000Z"),  # same instant, other spelling: duplicate
            dict(EVENT, eventTime="2023-07-10T11:46:00Z"),  # same id, other time: kept
            {k: v for k, v in EVENT.items() if k != "eventID"},  # no id: kept
            {k: v for k, v in EVENT.items() if k != "eventID"},  # no id: kept again
            {k: v for k, v in EVENT.items() if k != "eventTime"},  # no time: skipped
        ]
        with tempfile.TemporaryDirectory() as tmp:
            with gzip.open(os.path.join(tmp, "a.json.gz"), "wt") as f:
                json.dump({"Records": recs}, f)
            with open(os.path.join(tmp, "b.json"), "w") as f:
                f.write('{"not": "cloudtrail"}')
            err = io.StringIO()
            with redirect_stderr(err):
                events = se.load_events([tmp], log=err)
        self.assertEqual([(e[1], e[2]) for e in events], [
            ("e1", "2023-07-10T11:45:00Z"), ("e1", "2023-07-10T11:46:00Z"),
            (None, "2023-07-10T11:45:00Z"), (None, "2023-07-10T11:45:00Z")])
        self.assertIn("records without eventTime skipped: 1", err.getvalue())
        self.assertIn("b.json", err.getvalue())


if __name__ == "__main__":
    unittest.main()
