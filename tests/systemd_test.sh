#!/bin/sh
# dogslowd under a real systemd (issue 7).  Boots systemd as PID 1 in a
# container (systemd-nspawn) whose root is an overlay of the host's / with a
# tmpfs on top, so the build tree is visible and every write vanishes when
# it stops: the host is left untouched.  Inside, dogslowd is installed and
# set up the way an operator does it (make install, systemd-sysusers,
# systemd-tmpfiles --create, systemctl daemon-reload, enable --now the
# socket), and then:
#   - systemctl start returns with the unit active (Type=notify: READY=1),
#     StatusText is the daemon's STATUS=, and the main process runs as the
#     dogslow user with exactly CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH,
#     NoNewPrivs and a seccomp filter;
#   - a C worker and a Python worker, running as another unprivileged user,
#     get their slow requests reported in /var/log/dogslow with function
#     names and source lines (the sandbox does not break snapshots), and
#     their requests end normally; their frames are named in an analysis
#     process (privsep) and their Python frames in a Python analysis process,
#     each of the dogslow user with no capability at all,
#     NoNewPrivs and two seccomp filters more than systemd's;
#   - socket activation: with the service stopped and the socket listening,
#     a worker registering starts the service, and is reported;
#   - reload (SIGHUP) is logged;
#   - the watchdog: WatchdogSec=2s keeps it up, SIGSTOP gets it killed
#     for the watchdog and restarted, and the new daemon works: it takes
#     over a worker registered with the old one (/run/dogslow/workers) and
#     reports its request, and serves a new registration;
#   - stop ends with the unit inactive and a clean exit; journalctl has the
#     daemon's lines, and none saying its seccomp filter denied a call or
#     that it could not hold threads at real-time priority.
# Run by 'make check' (root only; skipped in the sanitizer build).  On CI
# (CI=true) a container that cannot boot is a failure, elsewhere a skip.
set -u
: "${abs_top_builddir:?run by make check}"
: "${TOP_SRCDIR:?run by make check}"
: "${sbindir:?}" "${libdir:?}" "${systemdsystemunitdir:?}" "${sysusersdir:?}" "${tmpfilesdir:?}"

t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0))s] $*"; }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn)"
if [ "${DOGSLOW_SANITIZERS:-no}" = yes ]; then
    skip "sanitizer build: the ASan/UBSan daemon is not run under the service's sandbox" \
        "(MemoryDenyWriteExecute, SystemCallFilter); the plain build runs this test"
fi

# Cannot boot a container: a skip on a developer's machine, a failure on CI.
cannot() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: CI=true, and $*" >&2
        echo "FAIL: tests/systemd_test.sh must run on CI: install systemd-container (tools/deps)" >&2
        exit 1
    fi
    skip "$*"
}
for p in systemd-nspawn unshare nsenter setpriv /usr/lib/systemd/systemd; do
    command -v "$p" >/dev/null 2>&1 || cannot "$p is missing (tools/deps: systemd-container)"
done

tmp=$(mktemp -d /tmp/dogslow-systemd-XXXXXX)
machine=dstest-$$
nspawn=
init=

# ---- teardown: always, and bounded -----------------------------------------
teardown() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        # SIGTERM: nspawn asks the container's systemd to power off.
        kill -TERM "$nspawn" 2>/dev/null
        i=0
        while kill -0 "$nspawn" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$nspawn" 2>/dev/null; then
            say "container did not stop ct 5 s: killing it"
            # The container's init first: that ends its whole PID namespace.
            [ -n "$init" ] && kill -KILL "$init" 2>/dev/null
            kill -KILL "$nspawn" 2>/dev/null
        fi
        wait "$nspawn" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap teardown EXIT
trap 'exit 1' INT TERM HUP

# ---- in the container ------------------------------------------------------
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# ct SECONDS CMD...: run CMD inside the container, with a clean environment.
ct() {
    secs=$1
    shift
    timeout -k 2 "$secs" nsenter -t "$init" -a env -i PATH="$PATH_IN" LANG=C.UTF-8 "$@"
}

diagnose() {
    [ -n "$init" ] || { echo "---- nspawn output"; cat "$tmp/nspawn.log"; return; }
    echo "---- systemctl status dogslowd.service dogslowd.socket"
    ct 10 systemctl status --no-pager -l dogslowd.service dogslowd.socket 2>&1
    echo "---- systemctl show dogslowd.service"
    ct 10 systemctl show -p ActiveState,SubState,Result,NRestarts,MainPID,StatusText,ExecMainCode,ExecMainStatus dogslowd.service 2>&1
    echo "---- journalctl -u dogslowd.service -u dogslowd.socket"
    ct 10 journalctl --no-pager -o short-monotonic -u dogslowd.service -u dogslowd.socket 2>&1 | tail -80
    echo "---- reports in /var/log/dogslow"
    ct 10 ls -la /var/log/dogslow 2>&1
}

fail() {
    echo "FAIL: $*" >&2
    diagnose >&2
    say "failed"
    exit 1
}

show() { ct 10 systemctl show -P "$1" dogslowd.service; }

# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds (in the container;
# on the host with wait_host).
wait_for() {
    secs=$1 what=$2
    shift 2
    end=$(($(date +%s) + secs))
    while ! ${on_host:-ct 10} "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fail "$what: not within $secs s"
        sleep 0.2
    done
}
wait_host() {
    on_host="command"
    wait_for "$@"
    on_host=
}

# ---- boot ------------------------------------------------------------------
# A private mount namespace: nspawn wants a tmpfs on /run/systemd/nspawn (it
# refuses to clean up under one that is not), and the overlay (host / read
# only, a tmpfs for the writes) lives and dies with it.  --volatile=overlay
# would be the same, but nspawn refuses -D / with it.  nspawn confines
# everything under the container's init with a seccomp allow-list of its
# own, which (systemd 252) lacks pidfd_getfd: without --system-call-filter
# a restarted daemon gets EPERM taking workers over, there only.
# The container gets a tmpfs of its own on /tmp (nspawn mounts it, and a
# booted systemd would): a checkout under /tmp would vanish in there.  Such
# a tree is overlaid at the same path, its writes in a temporary upper
# directory (nspawn's --overlay=LOWER::DEST), so it is visible and still
# left untouched.
trees=
for d in "$TOP_SRCDIR" "$abs_top_builddir"; do
    d=$(realpath "$d") || cannot "cannot resolve $d"
    case "$d" in
    /tmp | /tmp/* | /var/tmp | /var/tmp/*) ;;
    *) continue ;;
    esac
    case " $trees " in
    *" $d "*) continue ;;
    esac
    for t in $trees; do
        case "$d" in "$t"/*) continue 2 ;; esac
    done
    trees="$trees $d"
done
overlays=
for t in $trees; do
    overlays="$overlays --overlay=$t::$t"
done
[ -n "$trees" ] && say "the tree under /tmp is overlaid into the container:$trees"

mkdir -p /run/systemd/nspawn "$tmp/ovl"
say "booting systemd in a container ($machine)"
unshare -m --propagation private sh -c '
    set -e
    mount -t tmpfs tmpfs /run/systemd/nspawn
    mount -t tmpfs -o mode=0755 tmpfs "$1/ovl"
    mkdir "$1/ovl/upper" "$1/ovl/work" "$1/ovl/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$1/ovl/upper,workdir=$1/ovl/work" "$1/ovl/root"
    root=$1 name=$2
    shift 2
    exec systemd-nspawn --quiet --register=no --keep-unit -M "$name" -D "$root/ovl/root" \
        --system-call-filter=pidfd_getfd "$@" --boot --console=pipe
' sh "$tmp" "$machine" $overlays </dev/null >"$tmp/nspawn.log" 2>&1 &
nspawn=$!

end=$((t0 + 30))
while [ -z "$init" ]; do
    kill -0 "$nspawn" 2>/dev/null || cannot "systemd-nspawn exited: $(tail -5 "$tmp/nspawn.log")"
    [ "$(date +%s)" -lt "$end" ] || cannot "no systemd in the container after 30 s"
    for c in $(pgrep -P "$nspawn" 2>/dev/null); do
        [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && init=$c
    done
    sleep 0.2
done
# Booted: the system manager is up and its boot job queue is empty
# ("degraded" is fine: some host units, php-fpm for one, fail in here).
while :; do
    st=$(ct 5 systemctl is-system-running 2>/dev/null)
    case $st in running | degraded) break ;; esac
    [ "$(date +%s)" -lt "$end" ] || { diagnose; cannot "the container did not boot ct 30 s ($st)"; }
    sleep 0.3
done
say "booted ($st), container init is pid $init"

# ---- install, as an operator would ------------------------------------------
ct 60 make -s -C "$abs_top_builddir" install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install in the container"; }
# A fresh machine: nothing of an earlier dogslowd the host may have.
ct 10 rm -rf /var/log/dogslow /var/lib/dogslow /etc/dogslow /run/dogslow || fail "cleaning up"
ct 20 systemd-sysusers || fail "systemd-sysusers"
ct 20 systemd-tmpfiles --create || fail "systemd-tmpfiles --create"
# The workers' programs live in a tree under /tmp: the service's
# PrivateTmp= would hide their files (ELF, debug info) from the daemon.  An
# operator whose workers run from /tmp does the same: a drop-in that binds
# the tree into the service's view.
if [ -n "$trees" ]; then
    {
        echo "[Service]"
        for t in $trees; do echo "BindReadOnlyPaths=$t"; done
    } | ct 5 sh -c 'mkdir -p /etc/systemd/system/dogslowd.service.d &&
                    cat >/etc/systemd/system/dogslowd.service.d/dstest-tree.conf' ||
        fail "drop-in for the tree under /tmp"
fi
ct 20 systemctl daemon-reload || fail "daemon-reload"
ct 20 systemctl enable --now dogslowd.socket || fail "systemctl enable --now dogslowd.socket"
frag=$(show FragmentPath)
[ "$frag" = "$systemdsystemunitdir/dogslowd.service" ] ||
    fail "the unit loaded is $frag, not the installed $systemdsystemunitdir/dogslowd.service"
dsuid=$(ct 5 id -u dogslow) || fail "systemd-sysusers made no dogslow user"
ct 5 id -u dsworker >/dev/null 2>&1 || ct 10 useradd --system --no-create-home \
    --shell /usr/sbin/nologin dsworker || fail "useradd dsworker"
wkuid=$(ct 5 id -u dsworker)
[ "$(ct 5 stat -c %U:%a /var/log/dogslow)" = dogslow:750 ] ||
    fail "tmpfiles.d: /var/log/dogslow is $(ct 5 stat -c %U:%a /var/log/dogslow)"
say "installed: $sbindir/dogslowd, units in $systemdsystemunitdir; dogslow is uid $dsuid, the workers' user dsworker uid $wkuid"

# ---- start: READY=1, STATUS=, who it runs as ---------------------------------
ct 30 systemctl start dogslowd.service || fail "systemctl start dogslowd.service"
[ "$(show ActiveState)" = active ] || fail "not active after systemctl start"
status=$(show StatusText)
case $status in
*"processes registered"*"requests in flight"*"reports written"*) ;;
*) fail "StatusText is '$status', not the daemon's STATUS=" ;;
esac
say "active; StatusText: $status"

# check_main_pid: the main process's credentials, as the unit sets them up
# and the daemon narrows them (it clears the ambient set itself).
check_main_pid() {
    pid=$(show MainPID)
    [ "${pid:-0}" -gt 0 ] || fail "no main PID"
    ps=$(ct 5 cat "/proc/$pid/status") || fail "cannot read /proc/$pid/status"
    field() { echo "$ps" | awk -v f="$1:" '$1 == f { print $2; exit }'; }
    [ "$(field Uid)" = "$dsuid" ] || fail "main PID $pid runs as uid $(field Uid), not dogslow ($dsuid)"
    echo "$ps" | grep -q "^Uid:	$dsuid	$dsuid	$dsuid	$dsuid$" ||
        fail "not every uid is dogslow: $(echo "$ps" | grep ^Uid)"
    # CAP_DAC_READ_SEARCH is bit 2, CAP_SYS_PTRACE bit 19: 0x80004.
    for f in CapEff CapPrm CapBnd; do
        [ "$(field $f)" = 0000000000080004 ] ||
            fail "$f is $(field $f), not CAP_SYS_PTRACE|CAP_DAC_READ_SEARCH (0000000000080004)"
    done
    [ "$(field CapAmb)" = 0000000000000000 ] ||
        fail "CapAmb is $(field CapAmb): the daemon clears what AmbientCapabilities= passed"
    # Inheritable: what systemd put there for the ambient set, never more.
    [ $((0x$(field CapInh) & ~0x80004)) -eq 0 ] || fail "CapInh is $(field CapInh)"
    [ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs is $(field NoNewPrivs)"
    [ "$(field Seccomp)" = 2 ] || fail "Seccomp is $(field Seccomp), not 2 (filter)"
    echo "$ps" | grep -E '^(Uid|Cap[A-Za-z]*|NoNewPrivs|Seccomp):' | sed "s/^/  pid $pid /"
}
check_main_pid

ct 5 journalctl --no-pager -u dogslowd.service -o cat >"$tmp/journal" 2>&1
grep -q "listening on /run/dogslow/dogslow.sock (socket from systemd)" "$tmp/journal" ||
    fail "the daemon does not say it listens on the socket unit's /run/dogslow/dogslow.sock"
grep -q "reports in /var/log/dogslow;" "$tmp/journal" ||
    fail "the daemon does not write its reports in /var/log/dogslow"
grep -q "cannot create" "$tmp/journal" && fail "the daemon could not create something: $(grep 'cannot create' "$tmp/journal")"

# ---- workers as another user -------------------------------------------------
# worker NAME URL SECONDS [TIMER]: test_worker's slow request, as dsworker,
# with a TIMER-second timer (default 1); no DOGSLOW_SOCKET (the library's
# default socket).
worker() {
    ct 30 setpriv --reuid=dsworker --regid=dsworker --clear-groups \
        sh -c 'cd / && s=$(date +%s%N) &&
               DOGSLOW_TIMER=$3 "$0" slow "$2" GET "$1" && echo "took_ms=$((($(date +%s%N) - s) / 1000000))"' \
        "$abs_top_builddir/tests/workers/test_worker" "$2" "$3" "${4:-1}" >"$tmp/$1.out" 2>&1
    echo "rc=$?" >>"$tmp/$1.out"
}

# find_report URL: the report of GET URL, given 10 s to appear (under load,
# a fresh daemon's first snapshot, reading libc's debug info, takes time).
find_report() {
    end=$(($(date +%s) + 10))
    while :; do
        r=$(ct 5 grep -l -F "GET $1" -r /var/log/dogslow --include='slow_request_*.log' | head -1)
        [ -n "$r" ] || [ "$(date +%s)" -ge "$end" ] && break
        sleep 0.2
    done
    echo "$r"
}

# check_worker NAME URL SECONDS: it registered, finished its request normally
# and in about the time it asked for (never left stopped), and a report of
# the request names the functions and source lines of test_worker.c.
check_worker() {
    out=$(cat "$tmp/$1.out")
    echo "$out" | grep -q '^ready pid=' || fail "$1: the worker was not watched: $out"
    echo "$out" | grep -q '^done rc=0$' || fail "$1: the request did not end normally: $out"
    echo "$out" | grep -q '^rc=0$' || fail "$1: the worker failed: $out"
    ms=$(echo "$out" | sed -n 's/^took_ms=//p')
    [ "${ms:-99999}" -lt $(($3 * 1000 + 1500)) ] || fail "$1: a $3 s request took $ms ms"
    report=$(find_report "$2")
    [ -n "$report" ] || fail "$1: no report of GET $2 in /var/log/dogslow"
    ct 5 cat "$report" >"$tmp/$1.report"
    for want in "Program:    test_worker" \
                "test_worker.c\", line [0-9]*, in wait_for_database" \
                "test_worker.c\", line [0-9]*, in handle_slow_request" \
                "test_worker.c\", line [0-9]*, in main" \
                "nanosleep"; do
        grep -q "$want" "$tmp/$1.report" || { cat "$tmp/$1.report"; fail "$1: the report has no '$want'"; }
    done
    [ "$(ct 5 stat -c %U:%a "$report")" = dogslow:640 ] ||
        fail "$1: $report is $(ct 5 stat -c %U:%a "$report"), not dogslow:640"
    say "$1: GET $2 reported in $report; the request took $ms ms (asked $3 s)"
}

# A Python worker: its frames (file, line, function) between the native ones.
# The script lives outside /tmp: PrivateTmp= hides the workers' /tmp from the
# service, and the daemon quotes source lines from the file.
ct 5 mkdir -p /opt/dstest || fail "mkdir /opt/dstest"
cat >"$tmp/app.py" <<'EOF'
import sys, time
import dogslow_client


def load_order(order_id):
    marker = "python-under-systemd"
    time.sleep(2.5)  # stuck here
    return order_id


def handle():
    with dogslow_client.request("GET", "/systemd/python"):
        return load_order(42)


r = dogslow_client.register(timer=1)
print("register", r, dogslow_client.last_error(), flush=True)
handle()
print("py-done", flush=True)
EOF
ct 5 sh -c 'cat >/opt/dstest/app.py && chmod 644 /opt/dstest/app.py' <"$tmp/app.py" || fail "app.py"
pyworker() {
    ct 30 setpriv --reuid=dsworker --regid=dsworker --clear-groups \
        env PYTHONPATH="$TOP_SRCDIR/python" DOGSLOW_LIBRARY="$libdir/libdogslow.so.0" \
        /usr/bin/python3 /opt/dstest/app.py >"$tmp/python.out" 2>&1
    echo "rc=$?" >>"$tmp/python.out"
}

# check_analysis COMM: while the workers run, their frames are named in an
# analysis process (privsep) named COMM -- dogslowd-analys names frames,
# dogslowd-python the Python worker's Python frames -- of the daemon's user,
# without any capability, under no_new_privs and the spawner's and its own
# seccomp filters on top of systemd's.
check_analysis() {
    end=$(($(date +%s) + 3))
    pids=
    while [ -z "$pids" ] && [ "$(date +%s)" -le "$end" ]; do
        pids=$(ct 5 sh -c 'for d in /proc/[0-9]*; do
            [ "$(cat "$d/comm" 2>/dev/null)" = "$0" ] && echo "${d#/proc/}"; done' "$1")
        [ -n "$pids" ] || sleep 0.2
    done
    [ -n "$pids" ] || fail "no analysis process ($1) while the workers' reports are named"
    for apid in $pids; do
        aps=$(ct 5 cat "/proc/$apid/status") || continue
        afield() { echo "$aps" | awk -v f="$1:" '$1 == f { print $2; exit }'; }
        [ "$(afield Uid)" = "$dsuid" ] || fail "analysis process $apid runs as uid $(afield Uid)"
        for f in CapEff CapPrm CapAmb; do
            [ "$(afield $f)" = 0000000000000000 ] ||
                fail "analysis process $apid: $f is $(afield $f), not empty"
        done
        [ "$(afield NoNewPrivs)" = 1 ] || fail "analysis process $apid: NoNewPrivs $(afield NoNewPrivs)"
        # systemd's filters, the spawner's and its own: the daemon's count
        # (systemd's and the daemon's own) plus one.
        mfilters=$(ct 5 cat "/proc/$(show MainPID)/status" | awk '$1 == "Seccomp_filters:" { print $2 }')
        [ "$(afield Seccomp)" = 2 ] && [ "$(afield Seccomp_filters)" = $((mfilters + 1)) ] ||
            fail "analysis process $apid: $(afield Seccomp_filters) seccomp filters, not $((mfilters + 1))"
        echo "$aps" | grep -E '^(Uid|CapEff|CapPrm|NoNewPrivs|Seccomp|Seccomp_filters):' |
            sed "s/^/  $1 pid $apid /"
    done
}

worker native /systemd/native 3 &
w1=$!
pyworker &
w2=$!
sleep 1
check_analysis dogslowd-analys
check_analysis dogslowd-python
wait $w1 $w2
check_worker native /systemd/native 3
out=$(cat "$tmp/python.out")
echo "$out" | grep -q '^register 0 ' || fail "python: not registered: $out"
echo "$out" | grep -q '^py-done$' || fail "python: the request did not end normally: $out"
report=$(find_report /systemd/python)
[ -n "$report" ] || fail "python: no report of GET /systemd/python"
ct 5 cat "$report" >"$tmp/python.report"
for want in 'File "/opt/dstest/app.py", line 7, in load_order' \
            'time.sleep(2.5)  # stuck here' \
            'File "/opt/dstest/app.py", line 13, in handle' \
            'File "/opt/dstest/app.py", line 18, in <module>'; do
    grep -q -F "$want" "$tmp/python.report" || { cat "$tmp/python.report"; fail "python: the report has no '$want'"; }
done
say "python: GET /systemd/python reported with its Python frames in $report"
# STATUS= follows at most once a second.
wait_for 3 "StatusText with 2 reports written" sh -c \
    'systemctl show -P StatusText dogslowd.service | grep -q "2 reports written"'
say "StatusText: $(show StatusText)"

# ---- reload -------------------------------------------------------------------
pid=$(show MainPID)
ct 20 systemctl reload dogslowd.service || fail "systemctl reload"
wait_for 5 "a reload in the journal" sh -c \
    'journalctl --no-pager -u dogslowd.service -o cat | grep -q "configuration reloaded from"'
[ "$(show MainPID)" = "$pid" ] || fail "reload changed the main PID"
[ "$(show ActiveState)" = active ] || fail "not active after reload"
say "reload: logged, same pid $pid"

# ---- socket activation -----------------------------------------------------------
ct 30 systemctl stop dogslowd.service || fail "systemctl stop dogslowd.service"
[ "$(show ActiveState)" = inactive ] || fail "$(show ActiveState) after stop, not inactive"
[ "$(ct 5 systemctl show -P ActiveState dogslowd.socket)" = active ] ||
    fail "dogslowd.socket is not listening any more"
[ "$(show Result)" = success ] || fail "stop: Result=$(show Result)"
[ "$(show ExecMainStatus)" = 0 ] || fail "stop: exit status $(show ExecMainStatus)"
say "stopped (Result=success, exit status 0); the socket still listens"
worker activated /systemd/activated 3 &
w1=$!
wait_for 10 "the service started by a worker's registration" systemctl is-active --quiet dogslowd.service
say "a worker's registration started the service (pid $(show MainPID))"
wait $w1
check_worker activated /systemd/activated 3
check_main_pid >/dev/null

# ---- watchdog ------------------------------------------------------------------------
ct 5 mkdir -p /etc/systemd/system/dogslowd.service.d || fail "mkdir drop-in"
printf '[Service]\nWatchdogSec=2s\n' | ct 5 sh -c 'cat >/etc/systemd/system/dogslowd.service.d/watchdog.conf' ||
    fail "drop-in"
ct 20 systemctl daemon-reload || fail "daemon-reload"
ct 30 systemctl restart dogslowd.service || fail "systemctl restart with WatchdogSec=2s"
[ "$(show WatchdogUSec)" = 2s ] || fail "WatchdogUSec=$(show WatchdogUSec)"
pid=$(show MainPID)
nr=$(show NRestarts)
say "WatchdogSec=2s: pid $pid, NRestarts=$nr; waiting 6.5 s"
sleep 6.5
[ "$(show ActiveState)" = active ] && [ "$(show MainPID)" = "$pid" ] && [ "$(show NRestarts)" = "$nr" ] ||
    fail "with WatchdogSec=2s the daemon did not stay up (pid $(show MainPID), NRestarts=$(show NRestarts))"
# A worker registered with this daemon, in a request due (4 s timer) only
# after the watchdog restart: the next daemon takes it over from
# /run/dogslow/workers (RuntimeDirectoryPreserve=yes) and reports it.
worker adopted /systemd/adopted 6 4 &
w2=$!
wait_host 5 "the adopted worker's request" grep -q '^ready pid=' "$tmp/adopted.out"
ct 5 kill -STOP "$pid" || fail "kill -STOP $pid"
say "SIGSTOP to $pid"
wait_for 15 "a restart after the watchdog fired" sh -c \
    "[ \$(systemctl show -P NRestarts dogslowd.service) = $((nr + 1)) ] && systemctl is-active --quiet dogslowd.service"
newpid=$(show MainPID)
[ "$newpid" != "$pid" ] || fail "same main PID after the watchdog restart"
ct 5 journalctl --no-pager -u dogslowd.service -o cat >"$tmp/journal" 2>&1
grep -q "Watchdog timeout" "$tmp/journal" || fail "no 'Watchdog timeout' in the journal"
grep -q "Failed with result 'watchdog'" "$tmp/journal" || fail "no \"Failed with result 'watchdog'\" in the journal"
ct 5 kill -0 "$pid" 2>/dev/null && fail "the stopped daemon $pid is still there"
say "the watchdog killed pid $pid and systemd restarted it as $newpid (NRestarts=$((nr + 1)))"
check_main_pid >/dev/null
worker after_watchdog /systemd/after-watchdog 3
check_worker after_watchdog /systemd/after-watchdog 3
wait $w2
check_worker adopted /systemd/adopted 6
ct 5 journalctl --no-pager -u dogslowd.service -o cat _PID="$newpid" | grep -q "adopted pid .* from the previous daemon" ||
    fail "the restarted daemon $newpid did not take the registered worker over"

# ---- stop ------------------------------------------------------------------------------
ct 30 systemctl stop dogslowd.service || fail "systemctl stop"
[ "$(show ActiveState)" = inactive ] || fail "$(show ActiveState) after stop, not inactive"
[ "$(show Result)" = success ] || fail "stop: Result=$(show Result)"
[ "$(show ExecMainCode)" = 1 ] && [ "$(show ExecMainStatus)" = 0 ] ||
    fail "stop: the daemon did not exit 0 (code $(show ExecMainCode), status $(show ExecMainStatus))"
ct 5 journalctl --no-pager -u dogslowd.service -o cat >"$tmp/journal" 2>&1
for want in "listening on /run/dogslow/dogslow.sock" "running as uid $dsuid with CAP_SYS_PTRACE" \
            "systemd watchdog: WATCHDOG=1 every 1000 ms" "configuration reloaded from" \
            "undead request"; do
    grep -q -i "$want" "$tmp/journal" || fail "journalctl -u dogslowd has no '$want'"
done
# The daemon's own seccomp filter (daemon/sandbox.c) denied nothing.
grep -q "seccomp: .* denied" "$tmp/journal" && fail "the daemon's seccomp filter denied calls: $(grep denied "$tmp/journal")"
# The unit lets the loop thread hold workers' threads at SCHED_FIFO 1
# (LimitRTPRIO=1, RestrictRealtime=no, sched_setscheduler allowed).  A
# kernel with CONFIG_RT_GROUP_SCHED gives a cgroup v1 child no real-time
# time at all, and a container's systemd whose own hard RLIMIT_RTPRIO is 0
# cannot grant LimitRTPRIO=1: those refusals are the machine's, and the
# daemon must say which.
if grep -q "SCHED_FIFO refused" "$tmp/journal"; then
    init_rt=$(ct 5 sh -c 'grep "^Max realtime priority" /proc/1/limits' | awk '{print $5}')
    refusal=$(grep 'SCHED_FIFO refused' "$tmp/journal" | head -1)
    case "$refusal" in
    *"no real-time time (cpu.rt_runtime_us = 0"*) ;;
    *"RLIMIT_RTPRIO is 0 (hard limit 0)"*) [ "$init_rt" = 0 ] ||
        fail "LimitRTPRIO=1 not applied, though systemd's own hard limit is $init_rt: $refusal" ;;
    *) fail "the unit kept the daemon from real-time priority: $refusal" ;;
    esac
    say "real-time priority refused by this machine (systemd's hard RLIMIT_RTPRIO: $init_rt), not by the unit: $refusal"
fi
say "stopped cleanly; journalctl -u dogslowd has the daemon's lines"
echo "---- journalctl -u dogslowd"
cat "$tmp/journal"
say "systemd test: OK"
