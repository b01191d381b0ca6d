-- Register a consumer (or refresh it) before it blocks in BLMOVE, so that the
-- reaper knows its processing list (the reaper only forgets consumers whose
-- list is empty and who have not been seen for the retention time).
-- KEYS[1]: consumers: sorted set, member = consumer name, score = last seen (ms, server time)
-- ARGV[1]: the consumer name
-- Returns: the server time in milliseconds.
-- idempotent: yes
local now = now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
