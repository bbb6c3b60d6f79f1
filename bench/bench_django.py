#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How long is a real Django worker held per snapshot?

    DOGSLOWD=build/daemon/dogslowd DOGSLOW_LIBRARY=build/lib/.libs/libdogslow.so.0 \
        PYTHONPATH=python bench/bench_django.py [--quick] [--rows]

A Django project (Debian's python3-django) with Django's full default
middleware stack -- security, sessions, common, CSRF, authentication,
messages, clickjacking -- a SQLite database and the template engine,
served by Debian's gunicorn with one gthread worker of 4 threads, 2
workers.  Its slow views are what real ones look like from the outside:

  /orders/N      an ORM query whose rows are rendered through a template;
                 a template filter sleeps (a slow remote call), so the
                 thread is held deep inside Django's template engine
  /report        a view that spins on the CPU in pure Python

Each request outlives the 0.1 s timer; dogslowd (stack_vars on) takes one
snapshot of each and the report says how long it held the thread
("Paused:").  In the same run, the same daemon also reports the synthetic
worker of bench_python.py (50 Python frames with locals, busy-looping), so
the two figures sit side by side.

Prints one markdown table: per kind of stack, the Python frames shown,
the number of snapshots, and the median and largest held time (--rows:
bench/run's rows instead); and how long the daemon's loop waited, after
each hold, for the frames to be named (with privsep, the default, in the
Python analysis process; --no-privsep: in the daemon).  Fails if
a slow request went unreported or its report has no Python frames.
"""
import glob
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PYTHON = "/usr/bin/python3"  # Debian's: it has python3-django and gunicorn

SETTINGS = '''
SECRET_KEY = "dogslow-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "shop",
]
MIDDLEWARE = [
    "dogslow_client.django.DogslowMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %(db)r}}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DOGSLOW = True
DOGSLOW_TIMER = 0.1
'''

MODELS = '''
from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    note = models.TextField(default="")
'''

TAGS = '''
import time

from django import template

register = template.Library()


@register.filter
def shipping_quote(order):
    """A slow remote call made while rendering a row."""
    carrier = "slow-carrier"
    weight = float(order.total) / 10
    time.sleep(%(slow)s)
    return "%%s: %%.2f" %% (carrier, weight)
'''

TEMPLATE = '''{% load shop_tags %}<html><body><h1>Order {{ order.id }}</h1>
<table>{% for o in others %}<tr><td>{{ o.customer }}</td><td>{{ o.total }}</td>
<td>{% if o.id == order.id %}{{ o|shipping_quote }}{% endif %}</td></tr>{% endfor %}</table>
</body></html>
'''

VIEWS = '''
import time

from django.shortcuts import get_object_or_404, render
from django.http import HttpResponse

from shop.models import Order


def order_detail(request, order_id):
    order = get_object_or_404(Order, pk=order_id)
    others = list(Order.objects.filter(customer=order.customer).order_by("id")[:20])
    return render(request, "shop/order.html", {"order": order, "others": others})


def report(request):
    rows = 0
    end = time.monotonic() + %(slow)s
    while time.monotonic() < end:
        rows += 1
    return HttpResponse("rows=%%d" %% rows, content_type="text/plain")
'''

URLS = '''
from django.urls import path

from shop import views

urlpatterns = [
    path("orders/<int:order_id>", views.order_detail, name="order"),
    path("report", views.report, name="report"),
]
'''

WSGI = '''
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
'''


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_project(root, slow):
    app = os.path.join(root, "shop")
    write(os.path.join(app, "__init__.py"), "")
    write(os.path.join(app, "settings.py"), SETTINGS % {"db": os.path.join(root, "db.sqlite3")})
    write(os.path.join(app, "models.py"), MODELS)
    write(os.path.join(app, "templatetags", "__init__.py"), "")
    write(os.path.join(app, "templatetags", "shop_tags.py"), TAGS % {"slow": slow})
    write(os.path.join(app, "templates", "shop", "order.html"), TEMPLATE)
    write(os.path.join(app, "views.py"), VIEWS % {"slow": slow})
    write(os.path.join(app, "urls.py"), URLS)
    write(os.path.join(app, "wsgi.py"), WSGI)
    write(os.path.join(app, "migrations", "__init__.py"), "")
    # The schema and a few rows: makemigrations + migrate, then the ORM.
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="shop.settings", PYTHONPATH=root)
    env.pop("DOGSLOW_SOCKET", None)  # no daemon is asked while setting up
    for cmd in (["makemigrations", "shop"], ["migrate"]):
        subprocess.run([PYTHON, "-m", "django"] + cmd, cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    fill = ("import django; django.setup()\n"
            "from shop.models import Order\n"
            "Order.objects.bulk_create([Order(customer='acme' if i %% 2 else 'initech', "
            "total=i * 3.5, note='x' * i) for i in range(1, 41)])\n")
    subprocess.run([PYTHON, "-c", fill % ()], cwd=root, env=env, check=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, timeout=30):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read()


def paused_of(reports, needle):
    """(held times in us, Python frames of the deepest) of the reports
    whose request line contains needle."""
    held, frames = [], 0
    for path in reports:
        text = open(path, errors="replace").read()
        head = text.split("\n\n", 2)[1] if "\n\n" in text else ""
        if needle not in head:
            continue
        m = re.search(r"^Paused:\s+(\d+) us", text, re.M)
        if m:
            held.append(int(m.group(1)))
        # Python frames: "File ... line N, in f" lines of .py files in the
        # first (top) backtrace.
        top = text.split("\n\n\n", 1)[0]
        frames = max(frames, len(re.findall(r'^  File "[^"]+\.py", line \d+, in ', top, re.M)))
    return held, frames


def main():
    quick = "--quick" in sys.argv
    rounds = 3 if quick else 10
    slow = 0.6
    dogslowd = os.environ.get("DOGSLOWD")
    if not dogslowd:
        print(__doc__, file=sys.stderr)
        return 2
    if not os.path.exists(PYTHON) or subprocess.run(
            [PYTHON, "-c", "import django, gunicorn"], stderr=subprocess.DEVNULL).returncode:
        print("| Python worker held per snapshot: Django under gunicorn | skipped: "
              "python3-django or gunicorn not installed | - | - |")
        return 0
    tmp = tempfile.mkdtemp(prefix="dogslow-bench-dj-")
    sock = os.path.join(tmp, "dogslow.sock")
    out = os.path.join(tmp, "reports")
    here = os.path.dirname(os.path.abspath(__file__))
    pypath = os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, DOGSLOW_SOCKET=sock, DOGSLOW_TIMER="0.1",
               PYTHONPATH=tmp + (":" + pypath if pypath else ""))
    daemon = server = None
    failed = []
    named = []
    try:
        make_project(tmp, slow)
        daemon = subprocess.Popen(
            [dogslowd, "--socket", sock, "--output", out, "--timer", "0.1", "--timer-min",
             "0.05", "--stack-vars", "--follow", "0", "--set",
             "privsep=%s" % ("false" if "--no-privsep" in sys.argv else "true")],
            stderr=open(os.path.join(tmp, "daemon.log"), "w"))
        for _ in range(300):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        port = free_port()
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--workers", "2", "--threads", "4", "--worker-class",
             "gthread", "--bind", "127.0.0.1:%d" % port, "--timeout", "30", "--chdir", tmp,
             "shop.wsgi"], env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, "gunicorn.log"), "w"), start_new_session=True)
        for _ in range(300):
            try:
                get(port, "/orders/2", timeout=1)  # warm-up (slow too: reported)
                break
            except OSError:
                time.sleep(0.1)
        before = len(glob.glob(os.path.join(out, "slow_request_*.log")))
        # Four requests at a time: every thread of a worker busy, as under load.
        asked = 0
        for r in range(rounds):
            threads = []
            for k in range(4):
                path = "/orders/%d" % (2 + 2 * k) if k % 2 == 0 or r % 2 else "/report"
                t = threading.Thread(target=get, args=(port, path))
                t.start()
                threads.append(t)
                asked += 1
            for t in threads:
                t.join()
        # The synthetic worker of bench_python.py, against the same daemon.
        synth = subprocess.run([sys.executable, os.path.join(here, "bench_python.py"),
                                "--worker", str(rounds), "0.4", "1"], env=env,
                               stdout=subprocess.PIPE, text=True, timeout=300)
        time.sleep(0.5)
        reports = sorted(glob.glob(os.path.join(out, "slow_request_*.log")))
        if len(reports) - before < asked + rounds:
            failed.append("%d reports for %d slow requests" % (len(reports) - before,
                                                                asked + rounds))
        rows = []
        for label, needle in (("Django template + ORM view, sleeping in a template filter",
                               "/orders/"),
                              ("Django view spinning on the CPU", "/report"),
                              ("synthetic: 50 Python frames with locals (bench_python.py)",
                               "/bench/python")):
            held, frames = paused_of(reports, needle)
            if not held or frames == 0:
                failed.append("no Python frames in the reports of %s" % needle)
                continue
            rows.append((label, frames, len(held), statistics.median(held), max(held)))
        if synth.returncode != 0:
            failed.append("the synthetic worker failed")
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if daemon:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
            try:
                named = [float(m) for m in re.findall(
                    r"Python frames named in ([0-9.]+) ms",
                    open(os.path.join(tmp, "daemon.log")).read())]
            except OSError:
                named = []
        if failed:
            for name in ("daemon.log", "gunicorn.log"):
                try:
                    sys.stderr.write(open(os.path.join(tmp, name)).read()[-4000:])
                except OSError:
                    pass
        if os.environ.get("BENCH_KEEP"):
            print("bench_django: kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if "--rows" in sys.argv:
        # bench/run's table: figure | dogslowd | peer (same run) | ratio / target
        synth = [r for r in rows if "synthetic" in r[0]]
        for label, frames, n, med, mx in rows:
            if "synthetic" in label:
                continue
            peer = "-"
            ratio = "target < 1 ms (median): %s" % ("met" if med < 1000 else "**MISSED**")
            if synth:
                peer = "50-frame synthetic worker, same daemon: median %.0f us, max %.0f us" % (
                    synth[0][3], synth[0][4])
                ratio += "; %.1fx the synthetic" % (med / synth[0][3])
            print("| Python worker held per snapshot, locals on: %s, gunicorn gthread "
                  "(%d Python frames, %d snapshots) | median %.0f us, max %.0f us | %s | %s |"
                  % (label, frames, n, med, mx, peer, ratio))
        if named:
            print("| Python frames named after each hold (the loop waits), Django + synthetic "
                  "worker, %s | median %.2f ms, max %.2f ms (%d) | - | - |"
                  % ("in the daemon (privsep off)" if "--no-privsep" in sys.argv else
                     "in the Python analysis process (privsep)",
                     statistics.median(named), max(named), len(named)))
    else:
        print("| worker held per snapshot, stack_vars on | Python frames | snapshots "
              "| median | max |")
        print("|---|---|---|---|---|")
        for label, frames, n, med, mx in rows:
            print("| %s | %d | %d | %.0f us | %.0f us |" % (label, frames, n, med, mx))
        if named:
            print("\nPython frames named after each hold (the loop waits), %s: median %.2f ms, "
                  "max %.2f ms, %d snapshots" % (
                      "in the daemon" if "--no-privsep" in sys.argv else
                      "in the Python analysis process", statistics.median(named), max(named),
                      len(named)))
    for f in failed:
        print("FAILED: bench_django: %s" % f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
