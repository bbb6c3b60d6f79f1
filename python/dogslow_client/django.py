# SPDX-License-Identifier: MIT
"""Django middleware (new-style MIDDLEWARE) for dogslowd.

    MIDDLEWARE = ["dogslow_client.django.DogslowMiddleware", ...]

Settings, named and behaving as in dogslow:

    DOGSLOW = True            False: the middleware removes itself
    DOGSLOW_TIMER = 25        seconds before a request is reported (the
                              daemon's operator bounds it); default: the
                              daemon's timer, or $DOGSLOW_TIMER
    DOGSLOW_IGNORE_URLS = ()  URL pattern *names* not to watch: the request
                              path is resolved with django.urls.resolve()
                              and skipped when its url_name is listed (a
                              path that does not resolve is watched)

The report shows "METHOD scheme://host/path?query", as dogslow's does.
Registration happens when Django builds its middleware chain -- in each
worker, or once in a gunicorn --preload master, whose forked workers then
register themselves on their first request.
"""

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.urls import Resolver404, resolve

import dogslow_client


class DogslowMiddleware:
    def __init__(self, get_response):
        if not getattr(settings, "DOGSLOW", True):
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.exempt = frozenset(getattr(settings, "DOGSLOW_IGNORE_URLS", ()) or ())
        timer = getattr(settings, "DOGSLOW_TIMER", None)
        dogslow_client.register(timer=timer)

    def _is_exempt(self, request):
        if not self.exempt:
            return False
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return match.url_name in self.exempt

    def __call__(self, request):
        if self._is_exempt(request):
            return self.get_response(request)
        url = "%s://%s%s" % (request.scheme, request.get_host(), request.get_full_path())
        dogslow_client.begin(request.method, url)
        try:
            return self.get_response(request)
        finally:
            dogslow_client.end()
