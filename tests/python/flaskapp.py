# SPDX-License-Identifier: MIT
# A minimal Flask app for tests/check_python.c.
from flask import Flask

import dogslow_client.flask
import slowviews

app = Flask(__name__)
app.config["DOGSLOW_TIMER"] = 0.5
app.config["DOGSLOW_IGNORE_URLS"] = ("health",)

app.add_url_rule("/slow/sleep", "sleep", slowviews.sleep_view)
app.add_url_rule("/slow/spin", "spin", slowviews.spin_view)
app.add_url_rule("/slow/regex", "regex", slowviews.regex_view)
app.add_url_rule("/slow/lock", "lock", slowviews.lock_view)
app.add_url_rule("/health", "health", slowviews.health_view)
app.add_url_rule("/fast", "fast", slowviews.fast_view)

dogslow_client.flask.init_app(app)
