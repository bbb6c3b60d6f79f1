#!/usr/bin/python3
# Read back what a Spotlight sink received (GET /stream replays every
# envelope as a server-sent event) and print the events whose transaction is
# argv[2], one fact per line, for tests/check_delivery to check:
#   event <n> level=... logger=... transaction=... platform=...
#   tags method=... host=... pid=... program=...
#   fingerprint a|b|c
#   frame <i> fn=<function> file=<filename> line=<n> in_app=<bool> ctx=<bool> addr=<bool> vars=<k,k>
#   values <i> {"k": "v", ...}     (the vars of frame i, when it has any)
# Exits 1 if no such event arrived within argv[3] seconds.
import json
import sys
import time
import urllib.request


def events(port, timeout):
    req = urllib.request.Request("http://127.0.0.1:%s/stream" % port,
                                 headers={"Accept": "text/event-stream"})
    out = []
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            for raw in r:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line.startswith("data: "):
                    env = json.loads(line[6:])
                    for hdr, item in env[1]:
                        if hdr.get("type") == "event":
                            out.append(item)
    except Exception:
        pass  # the read times out once the replay is over
    return out


def main():
    port, txn, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
    end = time.monotonic() + wait
    while True:
        got = [e for e in events(port, 1.5) if e.get("transaction") == txn]
        if got or time.monotonic() > end:
            break
        time.sleep(0.3)
    for n, e in enumerate(got):
        print("event %d level=%s logger=%s transaction=%s platform=%s" % (
            n, e.get("level"), e.get("logger"), e.get("transaction"), e.get("platform")))
        t = e.get("tags", {})
        print("tags method=%s host=%s pid=%s program=%s" % (
            t.get("method"), t.get("host"), t.get("pid"), t.get("program")))
        print("fingerprint " + "|".join(e.get("fingerprint", [])))
        for th in e.get("threads", {}).get("values", []):
            for i, f in enumerate(th.get("stacktrace", {}).get("frames", [])):
                print("frame %d fn=%s file=%s line=%s in_app=%s ctx=%s addr=%s vars=%s" % (
                    i, f.get("function"), f.get("filename"), f.get("lineno"),
                    str(f.get("in_app")).lower(), "context_line" in f,
                    str(f.get("instruction_addr", "")).startswith("0x"),
                    ",".join(sorted(f.get("vars", {}).keys()))))
                if f.get("vars"):
                    print("values %d %s" % (i, json.dumps(f["vars"], sort_keys=True)))
    return 0 if got else 1


if __name__ == "__main__":
    sys.exit(main())
