# SPDX-License-Identifier: MIT
from django.http import HttpResponse
from django.urls import path

import slowviews


def wrap(fn):
    def view(request):
        return HttpResponse(fn(), content_type="text/plain")
    return view


urlpatterns = [
    path("slow/sleep", wrap(slowviews.sleep_view), name="sleep"),
    path("slow/spin", wrap(slowviews.spin_view), name="spin"),
    path("slow/regex", wrap(slowviews.regex_view), name="regex"),
    path("slow/lock", wrap(slowviews.lock_view), name="lock"),
    path("health", wrap(slowviews.health_view), name="health"),
    path("fast", wrap(slowviews.fast_view), name="fast"),
]
