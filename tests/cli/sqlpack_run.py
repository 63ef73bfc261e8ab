#!/usr/bin/env python3
"""Run a trailscope SQL pack on an engine and print each question's rows as JSON.

Why: the integration tests (tests/cli/lake.rs) prove that the pack answers like the local commands;
this script is the engine side. Usage:
    sqlpack_run.py --dialect duckdb|spark --pack DIR
The pack's create_table.sql must already point at the lake (trailscope sql-pack --location).
Timestamps are printed as RFC 3339 UTC with `Z`, the way trailscope prints them.
"""
import argparse
import datetime
import json
import os
import re
import sys

QUESTIONS = ["root", "activity", "failures", "detect", "used"]


def rfc3339(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        s = v.strftime("%Y-%m-%dT%H:%M:%S")
        if v.microsecond:
            s += ".%03d" % (v.microsecond // 1000)
        return s + "Z"
    return v


def statements(sql):
    # Strip comments, split on semicolons at line ends.
    body = "\n".join(l for l in sql.splitlines() if not l.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", body) if s.strip().rstrip(";")]


def run_duckdb(pack):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for st in statements(open(os.path.join(pack, "create_table.sql")).read()):
        con.execute(st.rstrip(";"))
    out = {}
    for q in QUESTIONS:
        cur = con.execute(open(os.path.join(pack, f"{q}.sql")).read())
        names = [d[0] for d in cur.description]
        out[q] = [{n: rfc3339(v) for n, v in zip(names, row)} for row in cur.fetchall()]
    return out


def run_spark(pack):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("trailscope-sqlpack")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", os.path.join(os.path.dirname(pack), "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", "-Dderby.system.home=" + os.path.dirname(pack))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for st in statements(open(os.path.join(pack, "create_table.sql")).read()):
        spark.sql(st.rstrip(";"))
    out = {}
    for q in QUESTIONS:
        df = spark.sql(open(os.path.join(pack, f"{q}.sql")).read())
        out[q] = [{k: rfc3339(v) for k, v in r.asDict().items()} for r in df.collect()]
    spark.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dialect", required=True, choices=["duckdb", "spark"])
    ap.add_argument("--pack", required=True)
    a = ap.parse_args()
    out = run_duckdb(a.pack) if a.dialect == "duckdb" else run_spark(a.pack)
    json.dump(out, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
