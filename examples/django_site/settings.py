"""Django settings snippet: the cache on fastredis (tests/test_examples.py runs it).

    pip install 'fastredis[django]'

Copy the CACHES block into your settings. Everything Django caches (the
cache framework, cached sessions, cache_page) then goes through an
in-process L1 in front of Redis, coherent across every worker process.
"""

import os

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "not-secret: example only")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]
MIDDLEWARE = [
    "django.middleware.cache.UpdateCacheMiddleware",  # whole-page cache: first
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",  # and last
]
ROOT_URLCONF = "django_site.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True

# --- the snippet -----------------------------------------------------------------
CACHES = {
    "default": {
        "BACKEND": "fastredis.contrib.django.TieredCacheBackend",
        "LOCATION": REDIS_URL,
        "TIMEOUT": 300,                # seconds; None = forever
        "KEY_PREFIX": "site",
        "OPTIONS": {
            "prefix": "django",        # Redis keys: {django}:v:<key>
            "local_ttl": 300,          # seconds an entry may stay in a process's L1
            "local_maxsize": 10_000,   # entries per process
            "coherence": "strict",     # a write acknowledged anywhere is seen by the next get
            "socket_timeout": 5,       # any other option goes to fastredis.Redis.from_url
        },
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # sessions in the same cache
CACHE_MIDDLEWARE_SECONDS = 60
