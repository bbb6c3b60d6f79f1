#!/usr/bin/python3
# SMTP server for tests/check_delivery: Debian's aiosmtpd with STARTTLS and
# AUTH.  Each message accepted is written whole (as received, after DATA) to
# DIR/msg-N.eml, atomically, so the test reads only complete messages.
#
#   smtpd.py --port P --dir DIR [--cert C --key K] [--user U --password PW]
#
# Prints "READY" on stdout once it listens.  Runs until killed.
import argparse
import os
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, outdir):
        self.dir = outdir
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        tmp = os.path.join(self.dir, ".tmp-%d" % n)
        with open(tmp, "wb") as f:
            f.write(("X-Test-Tls: %s\r\n" % ("yes" if session.ssl else "no")).encode())
            f.write(("X-Test-Auth: %s\r\n" % (session.authenticated and "yes" or "no")).encode())
            f.write(("X-Test-Rcpt: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.dir, "msg-%d-%d.eml" % (os.getpid(), n)))
        return "250 OK stored"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()

    kw = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kw["tls_context"] = ctx
        kw["require_starttls"] = True
    if a.user:
        def auth(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword) and data.login == a.user.encode()
                  and data.password == a.password.encode())
            return AuthResult(success=ok)
        kw["authenticator"] = auth
        kw["auth_required"] = True
        kw["auth_require_tls"] = bool(a.cert)
    c = Controller(Store(a.dir), hostname="127.0.0.1", port=a.port, **kw)
    c.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())
