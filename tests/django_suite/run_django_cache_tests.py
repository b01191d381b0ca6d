"""Run Django's own cache test cases (``tests/cache/tests.py`` of Django's
source distribution) against fastredis.contrib.django.TieredCacheBackend.

Usage: python run_django_cache_tests.py DJANGO_TESTS_DIR REDIS_URL [TestClass ...]

DJANGO_TESTS_DIR is the ``tests`` folder of Django's sdist (the one holding
``cache/``). Django's ``BaseCacheTests`` is the common suite every backend
runs (Django's Redis backend runs it as ``RedisCacheTests``); it runs here
once per backend configuration below. Exit status: 0 when every test passed.
"""

from __future__ import annotations

import os
import sys
import unittest


def configure(tests_dir: str, redis_url: str) -> None:
    import django
    from django.conf import settings

    sys.path.insert(0, tests_dir)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="fastredis-django-suite",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cache"],
        CACHES={"default": {"BACKEND": "fastredis.contrib.django.TieredCacheBackend", "LOCATION": redis_url}},
        MIDDLEWARE=[],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def suite_classes(redis_url: str) -> list:
    import redis
    from django.test import TestCase, override_settings

    from cache.tests import BaseCacheTests, RedisCacheTests, caches_setting_for_tests, redis_excluded_caches

    def params(**options: object) -> dict:
        return {"BACKEND": "fastredis.contrib.django.TieredCacheBackend", "LOCATION": redis_url, "OPTIONS": options}

    variants = {
        # the default: L1 with strict cross-process coherence
        "TieredCacheBackendTests": params(),
        # L1 with relaxed coherence
        "TieredCacheBackendRelaxedTests": params(coherence="relaxed", prefix="relaxed"),
        # no L1: every read a round trip (what a cluster client gets)
        "TieredCacheBackendNoL1Tests": params(local_maxsize=0, prefix="nol1"),
    }
    classes = []
    for name, base in variants.items():
        body = {
            "__module__": __name__,
            # Django's Redis backend raises redis's ResponseError on incr of a non-integer, as this one does
            "incr_decr_type_error": redis.exceptions.ResponseError,
            # the Redis backend's timeout rule applies as is (seconds, None forever, <= 0 expired)
            "test_get_backend_timeout_method": RedisCacheTests.test_get_backend_timeout_method,
        }
        cls = type(name, (BaseCacheTests, TestCase), body)
        classes.append(override_settings(CACHES=caches_setting_for_tests(base=base, exclude=redis_excluded_caches))(cls))
    return classes


def main(argv: list) -> int:
    tests_dir, redis_url, *only = argv
    configure(tests_dir, redis_url)
    from django.test.utils import get_runner
    from django.conf import settings

    runner = get_runner(settings)(verbosity=1, interactive=False)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in suite_classes(redis_url):
        if not only or cls.__name__ in only:
            suite.addTests(loader.loadTestsFromTestCase(cls))
    runner.setup_test_environment()
    old_config = runner.setup_databases()
    try:
        result = runner.run_suite(suite)
    finally:
        runner.teardown_databases(old_config)
        runner.teardown_test_environment()
        from fastredis.contrib.django import close_shared

        close_shared()
    print(f"FASTREDIS-DJANGO-SUITE ran={result.testsRun} failures={len(result.failures)} "
          f"errors={len(result.errors)} skipped={len(result.skipped)}", flush=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
