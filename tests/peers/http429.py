#!/usr/bin/python3
# A tiny Sentry stand-in for tests/check_delivery: answers envelope POSTs
# with the statuses listed in --script (e.g. "429:2,500,200"), one per
# request, then 200 for ever; "429:N" adds Retry-After: N, and "200rl:N"
# answers 200 with X-Sentry-Rate-Limits: N:error:key.  Logs each
# request as one line to --log: "<monotonic time> <status> <x-sentry-auth>".
import argparse
import http.server
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--script", default="")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    script = [s for s in a.script.split(",") if s]

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n) if n else b""
            step = script.pop(0) if script else "200"
            status, _, retry = step.partition(":")
            limit = status.endswith("rl")
            status = status[:-2] if limit else status
            with open(a.log, "a") as f:
                f.write("%.3f %s %s %s %d\n" % (time.monotonic(), status,
                        self.headers.get("Content-Type", "-"),
                        "auth" if "sentry_key=" in self.headers.get("X-Sentry-Auth", "") else "noauth",
                        body.count(b'"type":"event"')))
            self.send_response(int(status))
            if retry and limit:
                self.send_header("X-Sentry-Rate-Limits", "%s:error:key" % retry)
            elif retry:
                self.send_header("Retry-After", retry)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", a.port), H)
    print("READY", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
