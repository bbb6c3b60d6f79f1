#!/usr/bin/python3
# Parse one stored mail (tests/peers/smtpd.py) with Python's email package and
# print what tests/check_delivery checks, one fact per line:
#   subject <decoded subject>
#   header <name> <value>       (X-Test-*, X-Dogslow-Report, From, To)
#   part <content-type> <filename or -> <bytes>
#   text <each line of the text part>
#   json-ok <request.url>       (the attachment parses as JSON)
import email
import email.policy
import json
import sys

m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print("subject %s" % m["Subject"])
for h in ("X-Test-Tls", "X-Test-Auth", "X-Test-Rcpt", "X-Dogslow-Report", "From", "To"):
    print("header %s %s" % (h, m[h]))
for p in m.walk():
    if p.is_multipart():
        continue
    data = p.get_payload(decode=True)
    print("part %s %s %d" % (p.get_content_type(), p.get_filename() or "-", len(data)))
    if p.get_content_type() == "text/plain":
        for line in data.decode("utf-8").splitlines():
            print("text " + line)
    elif p.get_content_type() == "application/json":
        print("json-ok %s" % json.loads(data)["request"]["url"])
