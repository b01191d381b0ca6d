"""A Django process for the cross-process tests: reads commands on stdin,
answers each with one JSON line on stdout.

Usage: python worker.py REDIS_URL COHERENCE PREFIX

Commands (JSON arrays): ["get", key], ["set", key, value], ["delete", key],
["incr", key], ["get_or_set", key, value, sleep_seconds] (the loader sleeps,
then returns value; the answer says whether this process ran it),
["spin", key, seconds] (get key in a loop; answers the distinct values seen),
["spin_log", key, seconds] (get key in a loop; answers, per value seen, the
latest wall-clock time a get that returned it started),
["set_series", key, n, pause] (set key to 1..n, pausing between; answers
the wall-clock time each set was acknowledged), ["quit"].
"""

from __future__ import annotations

import json
import sys
import time


def main(url: str, coherence: str, prefix: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        CACHES={
            "default": {
                "BACKEND": "fastredis.contrib.django.TieredCacheBackend",
                "LOCATION": url,
                "OPTIONS": {"coherence": coherence, "prefix": prefix, "local_ttl": 3600},
            }
        }
    )
    django.setup()
    from django.core.cache import caches

    cache = caches["default"]
    cache.get("warm-up")  # starts the tracking connection
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd[0]
        if op == "quit":
            break
        if op == "get":
            out = cache.get(cmd[1])
        elif op == "set":
            cache.set(cmd[1], cmd[2], timeout=None)
            out = True
        elif op == "delete":
            out = cache.delete(cmd[1])
        elif op == "incr":
            out = cache.incr(cmd[1])
        elif op == "get_or_set":
            ran = []

            def loader() -> object:
                ran.append(1)
                time.sleep(cmd[3])
                return cmd[2]

            out = [cache.get_or_set(cmd[1], loader, timeout=60), bool(ran)]
        elif op == "spin":
            seen = []
            deadline = time.monotonic() + cmd[2]
            while time.monotonic() < deadline:
                v = cache.get(cmd[1])
                if not seen or seen[-1] != v:
                    seen.append(v)
            out = seen
        elif op == "spin_log":
            latest: dict = {}
            deadline = time.monotonic() + cmd[2]
            while time.monotonic() < deadline:
                started = time.time()
                latest[repr(cache.get(cmd[1]))] = started
            out = latest
        elif op == "set_series":
            acks = []
            for i in range(1, cmd[2] + 1):
                cache.set(cmd[1], i, timeout=None)
                acks.append(time.time())
                time.sleep(cmd[3])
            out = acks
        else:
            out = {"error": f"unknown command {op!r}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
