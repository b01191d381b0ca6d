"""The integrations import, and fail clearly, without their optional packages."""

from __future__ import annotations

import subprocess
import sys

CODE = r"""
import sys
for name in ("django", "asgiref", "opentelemetry", "starlette", "fastapi"):
    sys.modules[name] = None  # as if not installed: import raises ImportError
import doctest
import fastredis.contrib.asgi, fastredis.contrib.django, fastredis.metrics
try:
    fastredis.contrib.django.TieredCacheBackend("redis://localhost", {})
except ImportError as e:
    assert "fastredis[django]" in str(e), e
else:
    raise AssertionError("no ImportError without Django")
try:
    fastredis.metrics.enable_opentelemetry()
except ImportError as e:
    assert "fastredis[otel]" in str(e), e
else:
    raise AssertionError("no ImportError without OpenTelemetry")
assert fastredis.metrics.ON is False
for module in (fastredis.contrib.asgi, fastredis.metrics):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, (module.__name__, result)
print("ok")
"""


def test_without_optional_packages() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
