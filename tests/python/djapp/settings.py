# SPDX-License-Identifier: MIT
# A minimal Django project for tests/check_python.c.
SECRET_KEY = "dogslow-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djapp.urls"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
MIDDLEWARE = ["dogslow_client.django.DogslowMiddleware"]

DOGSLOW = True
DOGSLOW_TIMER = 0.5
DOGSLOW_IGNORE_URLS = ("health",)
