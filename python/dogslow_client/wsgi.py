# SPDX-License-Identifier: MIT
"""WSGI middleware: every request is watched by dogslowd.

    from dogslow_client.wsgi import DogslowMiddleware
    application = DogslowMiddleware(application, timer=10,
                                    ignore_paths=[r"/health", r"/static/"])

ignore_paths are regular expressions matched with re.match() against
PATH_INFO (so they are anchored at the start, as Django's URL patterns
are); a matching request is simply not watched.  The request counts as
running until the response iterable is closed, so a slow streaming response
is reported too.
"""

import re

import dogslow_client


def request_url(environ):
    """The URL as dogslow reports it: scheme://host/path?query."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    url = "%s://%s%s" % (scheme, host, path)
    if query:
        url += "?" + query
    # WSGI hands out bytes decoded as latin-1: recover the raw bytes so
    # non-ASCII paths show as the client sent them.
    try:
        return url.encode("latin-1")
    except UnicodeEncodeError:
        return url.encode("utf-8", "replace")


class _Closing:
    """Wraps a response iterable so the request ends when it is closed."""

    def __init__(self, iterable):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable)

    def close(self):
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            dogslow_client.end()


class DogslowMiddleware:
    def __init__(self, app, timer=None, ignore_paths=(), socket=None, program=None,
                 register=True):
        self.app = app
        self.ignore = [re.compile(p) for p in ignore_paths]
        if register:
            dogslow_client.register(socket=socket, timer=timer, program=program)

    def _ignored(self, environ):
        path = environ.get("PATH_INFO", "")
        return any(p.match(path) for p in self.ignore)

    def __call__(self, environ, start_response):
        if self.ignore and self._ignored(environ):
            return self.app(environ, start_response)
        dogslow_client.begin(environ.get("REQUEST_METHOD", "GET"), request_url(environ))
        try:
            result = self.app(environ, start_response)
        except BaseException:
            dogslow_client.end()
            raise
        return _Closing(result)
