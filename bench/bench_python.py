#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How long is a Python worker stopped per snapshot, 50 frames deep with locals?

    DOGSLOWD=build/daemon/dogslowd DOGSLOW_LIBRARY=build/lib/.libs/libdogslow.so.0 \
        PYTHONPATH=python bench/bench_python.py [--quick]

A worker (Debian's /usr/bin/python3) recurses 50 frames deep, each frame
with a few locals, and busy-loops measuring the largest gap between its own
clock reads.  Side by side, in this run:

  nobody looking       the noise floor
  dogslowd             one snapshot (native + Python frames, with locals)
                       per request; the worker's gap and the daemon's own
                       "Paused:" figure
  gdb py-bt-full       gdb -p PID -batch -ex py-bt-full (needs python3.11-dbg
                       for gdb's libpython support); skipped if missing

Prints one markdown table.  Fails if dogslowd did not report every request.
"""
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DEPTH = 50


def worker(windows, seconds, watched):
    """Run in a child: `windows` windows of busy looping, 50 frames deep."""
    if watched:
        import dogslow_client
        dogslow_client.register()

    def busy():
        local_str = "some text"
        local_list = [1, 2, 3]
        gap = 0.0
        start = prev = time.perf_counter()
        while True:
            t = time.perf_counter()
            if t - prev > gap:
                gap = t - prev
            prev = t
            if t - start > seconds:
                return gap + 0 * len(local_str) * len(local_list)

    def deep(level):
        here = level * 10
        label = "level %d" % level
        if level < DEPTH:
            return deep(level + 1) + 0 * here * len(label)
        return busy()

    for _ in range(windows):
        if watched:
            with dogslow_client.request("GET", "/bench/python"):
                g = deep(1)
        else:
            g = deep(1)
        print("%.1f" % (g * 1e6), flush=True)


def run_worker(windows, seconds, watched, env):
    p = subprocess.Popen([sys.executable, __file__, "--worker", str(windows), str(seconds),
                          "1" if watched else "0"], stdout=subprocess.PIPE, env=env, text=True)
    return p


def gaps_of(p):
    out, _ = p.communicate(timeout=600)
    return [float(x) for x in out.split()]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1")
        return 0
    quick = "--quick" in sys.argv
    windows = 5 if quick else 15
    dogslowd = os.environ.get("DOGSLOWD")
    if not dogslowd:
        print(__doc__, file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="dogslow-bench-py-")
    sock = os.path.join(tmp, "dogslow.sock")
    out = os.path.join(tmp, "reports")
    env = dict(os.environ, DOGSLOW_SOCKET=sock, DOGSLOW_TIMER="0.1")
    rows = []
    try:
        control = gaps_of(run_worker(windows, 0.3, False, env))
        d = subprocess.Popen([dogslowd, "--socket", sock, "--output", out, "--timer", "0.1",
                              "--timer-min", "0.05", "--stack-vars", "--follow", "0"],
                             stderr=open(os.path.join(tmp, "daemon.log"), "w"))
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        watched = gaps_of(run_worker(windows, 0.4, True, env))
        time.sleep(0.5)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=20)
        reports = sorted(glob.glob(os.path.join(out, "slow_request_*.log")))
        paused, py_frames = [], 0
        for r in reports:
            text = open(r).read()
            for line in text.splitlines():
                if line.startswith("Paused:"):
                    paused.append(float(line.split()[1]))
            py_frames = max(py_frames, text.count("<locals>.deep\n") // 2)
        if len(reports) != windows:
            print("bench_python: %d reports for %d slow requests" % (len(reports), windows),
                  file=sys.stderr)
            sys.stderr.write(open(os.path.join(tmp, "daemon.log")).read())
            return 1
        if py_frames < DEPTH:
            print("bench_python: reports show %d Python frames, want %d" % (py_frames, DEPTH),
                  file=sys.stderr)
            sys.stderr.write(open(reports[0]).read()[:3000])
            return 1
        m_ctl = statistics.median(control)
        m_w = statistics.median(watched)
        m_d = statistics.median(paused)
        rows.append(("nobody looking (noise floor)", "%.0f us" % m_ctl, "-", "-"))
        rows.append(("dogslowd, native + %d Python frames with locals (%d snapshots)"
                     % (py_frames, len(reports)), "%.0f us" % m_w, "%.0f us" % m_d, "1x"))
        gdb = shutil.which("gdb")
        have_py_gdb = os.path.exists("/usr/share/gdb/auto-load/usr/bin/python3.11-gdb.py")
        if gdb and have_py_gdb and os.path.realpath(sys.executable).startswith("/usr/bin/python3"):
            g = []
            for _ in range(2 if quick else 4):
                p = run_worker(1, 6.0, False, env)
                time.sleep(0.5)
                subprocess.run([gdb, "-nx", "-batch", "-p", str(p.pid), "-ex", "py-bt-full"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=120)
                g += gaps_of(p)
            m_g = statistics.median(g)
            rows.append(("gdb -batch -ex py-bt-full (%d runs)" % len(g), "%.0f us" % m_g, "-",
                         "%.0fx" % (m_g / m_w)))
        else:
            rows.append(("gdb py-bt-full", "skipped: gdb or python3.11-dbg not installed",
                         "-", "-"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| Python worker pause per snapshot, %d Python frames (median) | seen by the worker "
          "| seen by the daemon | vs dogslowd |" % DEPTH)
    print("|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
