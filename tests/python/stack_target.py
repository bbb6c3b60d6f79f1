# SPDX-License-Identifier: MIT
"""A Python process for tests/check_pyframes.c to read from outside.

The main thread sleeps in sleeper(), a second thread waits on an Event in
waiter(); both with locals of known values.  Before settling it prints, one
per line:

    local NAME REPR     repr() of each of sleeper()'s locals, for comparison
    id obj HEX          id() of the custom object
    ready PID MAIN_TID THREAD_TID

Lines the test looks for in this file are marked with "# MARK: name".
Optional argument "deep N": recurse N levels in recurse() before sleeping.
"""
import sys
import threading
import time


class Custom:
    pass


def waiter(event, ready):
    label = "second thread"
    count = 7
    ready.set()
    event.wait()  # MARK: waiter


def recurse(n, stop):
    if n > 0:
        return recurse(n - 1, stop)  # MARK: recurse-call
    stop.wait()  # MARK: recurse-bottom


def sleeper(tid):
    s = "hello 'dog' \n\u00e9\u4e2d"
    i = 42
    neg = -7
    big = 2**100 + 1
    f = 3.25
    tenth = 0.1
    huge = 1e100
    nothing = None
    yes = True
    lst = [1, "two", 3.0]
    d = {"a": 1, "b": [2]}
    t = (1,)
    b = b"\x00ab'"
    obj = Custom()
    long_list = list(range(100))
    st = {5}
    empty = {}
    for name in ("s", "i", "neg", "big", "f", "tenth", "huge", "nothing", "yes", "lst",
                 "d", "t", "b", "st", "empty"):
        print("local", name, repr(locals()[name]))
    print("id obj %x" % id(obj))
    print("ready", threading.get_native_id(), threading.get_native_id(), tid, flush=True)
    time.sleep(3600)  # MARK: sleeper


def main():
    event = threading.Event()
    ready = threading.Event()
    th = threading.Thread(target=waiter, args=(event, ready), daemon=True)
    th.start()
    ready.wait()
    if len(sys.argv) > 2 and sys.argv[1] == "deep":
        print("ready", threading.get_native_id(), threading.get_native_id(), th.native_id,
              flush=True)
        recurse(int(sys.argv[2]), threading.Event())
        return
    sleeper(th.native_id)  # MARK: main


if __name__ == "__main__":
    main()
