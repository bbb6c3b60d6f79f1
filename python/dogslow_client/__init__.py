# SPDX-License-Identifier: MIT
"""Let dogslowd watch this process's requests.

    import dogslow_client
    dogslow_client.register()                 # once per process
    with dogslow_client.request("GET", "/orders/42"):
        ...

A thin ctypes layer over libdogslow (see libdogslow(3)).  begin() and end()
write the calling thread's scoreboard slot: no system call, no lock.  When
libdogslow or the daemon is missing every call is a cheap no-op and one
warning is logged (logger "dogslow_client"): a watchdog must never break the
application it watches.

Framework hook-ups: dogslow_client.wsgi, dogslow_client.django,
dogslow_client.flask.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import sys
import threading

__all__ = [
    "register",
    "unregister",
    "begin",
    "end",
    "request",
    "available",
    "last_error",
]

log = logging.getLogger("dogslow_client")

# C-side limits (dogslow.h); longer values are cut by the library anyway,
# cutting here first keeps the encode cheap for huge URLs.
METHOD_MAX = 31
URL_MAX = 959


class _Options(ctypes.Structure):
    """struct dogslow_options.

    Fields are only ever appended to the C struct, and a zero field means
    "the default".  The reserved tail is zeroed, so a newer libdogslow that
    reads a field this module does not know yet reads 0/NULL -- never past
    the end of our buffer.
    """

    _fields_ = [
        ("socket_path", ctypes.c_char_p),
        ("timer_ms", ctypes.c_uint),
        ("max_threads", ctypes.c_uint),
        ("program", ctypes.c_char_p),
        ("ignore_urls", ctypes.c_char_p),
        ("_reserved", ctypes.c_void_p * 16),
    ]


_lock = threading.Lock()
_lib = None          # the loaded library, or False once loading failed
_begin = _end = None  # bound C functions, for the hot path
_warned = set()


def _warn_once(key, msg, *args):
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


# Where `make install` puts the library (the default prefix, /usr/local):
# the loader finds it there only once ldconfig has run, so it is also
# tried by path.
_INSTALLED = ("/usr/local/lib/libdogslow.so.0", "/usr/local/lib64/libdogslow.so.0")
# Where a build of the source tree puts it (libtool).
_BUILT = os.path.join("lib", ".libs", "libdogslow.so.0")


def _source_tree():
    """The dogslowd source tree this package was installed from (the build
    backend, python/_build, records it in _built.py), or the one it runs
    from (PYTHONPATH=python, pip install -e); None."""
    try:
        from . import _built
        tree = _built.SOURCE_TREE
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        tree = os.path.dirname(os.path.dirname(here))
    if tree and os.path.exists(os.path.join(tree, "lib", "dogslow.c")):
        return tree
    return None


def _tree_libraries(tree):
    """Libraries built in the tree: build/ first (tools/quickstart's and
    tools/build's), then an in-tree build, then other build directories."""
    if not tree:
        return []
    dirs = ["build", ""]
    try:
        dirs += sorted(d for d in os.listdir(tree) if d != "build")
    except OSError:
        pass
    paths = [os.path.join(tree, d, _BUILT) for d in dirs]
    return [p for p in paths if os.path.exists(p)]


def _advice(tree, built):
    """What to do when the library cannot be loaded: one sentence."""
    if built:
        example = built[0]
    elif tree:
        example = "%s (after tools/quickstart)" % os.path.join(tree, "build", _BUILT)
    else:
        example = "/path/to/dogslowd/build/lib/.libs/libdogslow.so.0"
    return ("set DOGSLOW_LIBRARY to the library, e.g. DOGSLOW_LIBRARY=%s, or install it "
            "system-wide: 'make install && ldconfig' (as root) in the dogslowd build directory"
            % example)


def _load():
    """Load libdogslow once; False if it cannot be found.

    $DOGSLOW_LIBRARY, when set, is the only place looked at.  Otherwise:
    the system's loader (ldconfig's cache, LD_LIBRARY_PATH), /usr/local/lib
    (make install's, before ldconfig has run), and the libraries built in
    the source tree the package was installed from.
    """
    global _lib, _begin, _end
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        env = os.environ.get("DOGSLOW_LIBRARY")
        tree = built = None
        if env:
            names = [env]
        else:
            tree = _source_tree()
            built = _tree_libraries(tree)
            names = []
            found = ctypes.util.find_library("dogslow")
            if found:
                names.append(found)
            names.append("libdogslow.so.0")
            names += [p for p in _INSTALLED if os.path.exists(p)]
            names += built
        errors = []
        for name in names:
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                errors.append(str(e))
                continue
            lib.dogslow_register.argtypes = [ctypes.POINTER(_Options)]
            lib.dogslow_register.restype = ctypes.c_int
            lib.dogslow_unregister.argtypes = []
            lib.dogslow_unregister.restype = ctypes.c_int
            lib.dogslow_begin.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            lib.dogslow_begin.restype = ctypes.c_int
            lib.dogslow_end.argtypes = []
            lib.dogslow_end.restype = ctypes.c_int
            lib.dogslow_last_error.argtypes = []
            lib.dogslow_last_error.restype = ctypes.c_char_p
            _begin, _end = lib.dogslow_begin, lib.dogslow_end
            _lib = lib
            return lib
        if env:
            tree = _source_tree()
            _warn_once("load", "dogslow_client: libdogslow not loaded from DOGSLOW_LIBRARY=%s "
                       "(%s); requests are not watched: %s (or unset DOGSLOW_LIBRARY to look in "
                       "the usual places)", env, "; ".join(errors),
                       _advice(tree, _tree_libraries(tree)))
        else:
            _warn_once("load", "dogslow_client: libdogslow not found (%s); requests are not "
                       "watched: %s", "; ".join(errors), _advice(tree, built))
        _lib = False
        return False


def available():
    """True if libdogslow could be loaded (the daemon may still be down)."""
    return bool(_load())


def last_error():
    """Why the last registration failed, or ""."""
    lib = _load()
    if not lib:
        return "libdogslow not found"
    msg = lib.dogslow_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def _default_program():
    # Python programs all run as "python3"; the script's name says more
    # (gunicorn, uwsgi, manage.py).
    arg0 = sys.argv[0] if sys.argv else ""
    if not arg0 or arg0 in ("-c", "-m"):
        return None
    name = os.path.basename(arg0)
    if name == "__main__.py":  # python -m gunicorn: name the package
        name = os.path.basename(os.path.dirname(os.path.abspath(arg0))) or name
    return name


def register(socket=None, timer=None, program=None, max_threads=None):
    """Register this process with dogslowd.

    socket: the daemon's socket path (default $DOGSLOW_SOCKET, then the
    built-in defaults).  timer: seconds (fractions allowed) before a request
    is reported, within the operator's bounds (default $DOGSLOW_TIMER, then
    the daemon's).  program: the name shown in reports (default the
    script's name).  Returns 0 or a negative errno; on failure the library
    keeps retrying from begin(), so a daemon started later still finds us.
    Safe to call more than once; forked children (gunicorn, uWSGI workers)
    register themselves on their first request.
    """
    lib = _load()
    if not lib:
        return -errno.ENOSYS
    opts = _Options()
    if socket:
        opts.socket_path = os.fsencode(socket)
    if timer is not None:
        ms = int(round(float(timer) * 1000))
        if ms <= 0:
            raise ValueError("dogslow timer must be positive, not %r" % (timer,))
        opts.timer_ms = ms
    if max_threads:
        opts.max_threads = int(max_threads)
    if program is None:
        program = _default_program()
    if program:
        opts.program = program.encode("utf-8", "replace")[:255]
    r = lib.dogslow_register(ctypes.byref(opts))
    if r < 0:
        _warn_once("register", "dogslow_client: not registered with dogslowd: %s",
                   last_error() or os.strerror(-r))
    return r


def unregister():
    """Stop being watched (begin/end become no-ops)."""
    lib = _load()
    return lib.dogslow_unregister() if lib else -errno.ENOSYS


def _encode(s, limit):
    if isinstance(s, bytes):
        return s[:limit]
    # Enough characters for 'limit' bytes in the worst case; the C side
    # cuts the rest.
    return str(s)[:limit].encode("utf-8", "replace")


def begin(method, url):
    """A request starts on this thread.  0, or a negative errno (the
    request is simply not watched then)."""
    if _begin is None and not _load():
        return -errno.ENOSYS
    return _begin(_encode(method, METHOD_MAX), _encode(url, URL_MAX))


def end():
    """The request on this thread is done."""
    if _end is None and not _load():
        return -errno.ENOSYS
    return _end()


@contextlib.contextmanager
def request(method, url):
    """with dogslow_client.request("GET", "/x"): ... -- watched while inside."""
    begin(method, url)
    try:
        yield
    finally:
        end()
