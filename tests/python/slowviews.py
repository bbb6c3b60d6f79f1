# SPDX-License-Identifier: MIT
"""The slow and fast views tests/check_python.c serves with Django and Flask.

Each returns "pid=N" (the worker that ran it) so the test can find the
report of that very request.  Each slow view keeps a few locals of known
values (a str, an int, a list, a dict) for the reports' Python frames.
SLOW is how long a slow view runs: well past the 0.5 s timer.
"""
import os
import re
import threading
import time

SLOW = 1.2


def answer():
    return "pid=%d\n" % os.getpid()


def sleep_view():
    label = "sleepy"
    count = 3
    items = [1, 2, 3]
    info = {"kind": "sleep"}
    # A long SQL statement: its WHERE clause, past the first 1 KiB, must
    # be in the report (max_value_bytes, 2 KiB by default).
    query = ("SELECT " + ", ".join("col%d" % i for i in range(150))
             + " FROM orders WHERE customer_id = 4242")
    time.sleep(SLOW)  # MARK: sleep
    return answer()


def spin_view():
    label = "spinning"
    count = 0
    items = [4, 5]
    info = {"kind": "spin"}
    end = time.monotonic() + SLOW
    while time.monotonic() < end:  # MARK: spin
        count += 1
    return answer()


def _regex_seconds(n):
    # CPU time, not wall time: on a loaded machine (make -j check) the wall
    # clock counts the time spent waiting for a CPU, the calibration comes
    # out short, and the "slow" regex could end before the 0.5 s timer.
    t = time.thread_time()
    re.match(r"(a+)+$", "a" * n + "b")
    return time.thread_time() - t


def regex_view():
    """One catastrophic regex: a single C call that holds the GIL for
    about SLOW seconds (each extra 'a' doubles its time)."""
    label = "backtracking"
    n = 16
    while _regex_seconds(n) < 0.02 and n < 40:
        n += 1
    took = _regex_seconds(n)
    while took < SLOW * 0.75 and n < 40:
        n += 1
        took *= 2
    items = [n]
    info = {"kind": "regex"}
    re.match(r"(a+)+$", "a" * n + "b")  # MARK: regex
    return answer()


def lock_view():
    label = "waiting"
    count = 1
    items = ["lock"]
    info = {"kind": "lock"}
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(SLOW, lock.release).start()
    lock.acquire()  # MARK: lock
    lock.release()
    return answer()


def health_view():
    # Slow too, but ignored by DOGSLOW_IGNORE_URLS: must not be reported.
    time.sleep(SLOW)
    return answer()


def fast_view():
    return answer()
