# SPDX-License-Identifier: MIT
"""Flask hook-up for dogslowd.

    import dogslow_client.flask
    dogslow_client.flask.init_app(app)

Reads app.config the way the Django middleware reads settings: DOGSLOW
(default True), DOGSLOW_TIMER (seconds), DOGSLOW_IGNORE_URLS (endpoint
names -- Flask's counterpart of Django's URL pattern names).  Arguments
given to init_app() win over the config.
"""

import dogslow_client

_MISSING = object()


def init_app(app, timer=_MISSING, ignore_urls=_MISSING):
    from flask import request

    if not app.config.get("DOGSLOW", True):
        return False
    if timer is _MISSING:
        timer = app.config.get("DOGSLOW_TIMER")
    if ignore_urls is _MISSING:
        ignore_urls = app.config.get("DOGSLOW_IGNORE_URLS", ())
    exempt = frozenset(ignore_urls or ())
    dogslow_client.register(timer=timer)

    @app.before_request
    def _dogslow_begin():
        if request.endpoint in exempt and request.endpoint is not None:
            return None
        dogslow_client.begin(request.method, request.url)
        return None

    @app.teardown_request
    def _dogslow_end(exc=None):
        # Always runs, also after an exception; ending a request that was
        # never begun is a no-op.
        dogslow_client.end()

    return True
