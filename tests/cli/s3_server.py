#!/usr/bin/env python3
"""A real S3-compatible server on loopback for the `pull` tests (tests/cli/pull.rs).

Starts moto's S3 server (moto.server.ThreadedMotoServer) on a free port, and in front of it a small
HTTP proxy that logs every request and can answer chosen requests with faults (503 SlowDown, 500
InternalError, or an object body cut off half way), as S3 does under throttling. Prints one JSON line
with both endpoints, then serves commands, one JSON object per line on stdin, each answered by one
JSON line on stdout:

  {"op": "put", "bucket": B, "items": [{"key": K, "file": PATH | "text": S, "metadata": {...}}]}
  {"op": "faults", "list": [503, 500], "get": [503, "truncate"]}   next LIST / object GET answers
  {"op": "stats"}         requests seen by the proxy, faults injected, credential scopes used,
                          STS calls (action, role, the key that signed it)
  {"op": "reset"}         forget the request log

Exits when stdin closes, so the server never outlives the test that started it.
"""

import http.client
import http.server
import json
import logging
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

LOCK = threading.Lock()
FAULTS = {"list": [], "get": []}
LOG = []
INJECTED = []
SCOPES = set()
STS = []
UPSTREAM = None
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}
CODES = {503: ("SlowDown", "Please reduce your request rate."), 500: ("InternalError", "We encountered an internal error.")}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        kind = "other"
        if self.command == "GET":
            kind = "list" if "list-type" in query else "get"
        m = re.search(r"Credential=([^/]+)/\d+/([^/]+)/s3/", self.headers.get("Authorization", ""))
        form = parse_qs(body.decode("utf-8", "replace")) if self.command == "POST" and body else {}
        with LOCK:
            if "Action" in form:
                signer = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
                STS.append({
                    "action": form["Action"][0],
                    "role": form.get("RoleArn", [None])[0],
                    "key": signer.group(1) if signer else None,
                })
            LOG.append({
                "method": self.command,
                "kind": kind,
                "path": unquote(url.path),
                "prefix": query.get("prefix", [None])[0],
                "delimiter": query.get("delimiter", [None])[0],
            })
            if m:
                SCOPES.add(f"{m.group(1)}/{m.group(2)}")
            fault = FAULTS[kind].pop(0) if kind in FAULTS and FAULTS[kind] else None
            if fault is not None:
                INJECTED.append({"kind": kind, "fault": fault, "path": unquote(url.path)})
        if isinstance(fault, int):
            code, message = CODES.get(fault, ("Error", "injected"))
            data = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()
            self.send_response(fault)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        conn = http.client.HTTPConnection(*UPSTREAM, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
        elif fault == "truncate" and resp.status in (200, 206) and len(data) > 1:
            # Announce the whole body, send half, and hang up: a connection lost mid-download.
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    global UPSTREAM
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    UPSTREAM = moto.get_host_and_port()
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    moto_url = f"http://{UPSTREAM[0]}:{UPSTREAM[1]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(max_pool_connections=32, retries={"max_attempts": 1}),
    )
    buckets = set()
    print(json.dumps({"moto": moto_url, "proxy": f"http://127.0.0.1:{proxy.server_address[1]}"}), flush=True)

    def put(bucket, item):
        if "file" in item:
            with open(item["file"], "rb") as f:
                data = f.read()
        else:
            data = item.get("text", "").encode()
        r = s3.put_object(Bucket=bucket, Key=item["key"], Body=data, Metadata=item.get("metadata", {}))
        return r["ETag"]

    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            op = cmd["op"]
            if op == "put":
                if cmd["bucket"] not in buckets:
                    s3.create_bucket(Bucket=cmd["bucket"])
                    buckets.add(cmd["bucket"])
                with ThreadPoolExecutor(16) as pool:
                    etags = list(pool.map(lambda i: put(cmd["bucket"], i), cmd["items"]))
                answer = {"ok": True, "etags": etags}
            elif op == "faults":
                with LOCK:
                    FAULTS["list"] = list(cmd.get("list", []))
                    FAULTS["get"] = list(cmd.get("get", []))
                answer = {"ok": True}
            elif op == "stats":
                with LOCK:
                    answer = {
                        "ok": True,
                        "requests": list(LOG),
                        "injected": list(INJECTED),
                        "pending": {k: len(v) for k, v in FAULTS.items()},
                        "scopes": sorted(SCOPES),
                        "sts": list(STS),
                    }
            elif op == "reset":
                with LOCK:
                    LOG.clear()
                    INJECTED.clear()
                    SCOPES.clear()
                    STS.clear()
                answer = {"ok": True}
            else:
                answer = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as e:  # reported to the test, which fails with it
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)
    proxy.shutdown()
    moto.stop()


if __name__ == "__main__":
    main()
