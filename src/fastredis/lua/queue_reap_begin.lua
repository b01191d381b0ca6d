-- Become the reaper for one interval (at most one reaper runs per interval,
-- across every consumer) and list the registered consumers.
-- KEYS[1]: the reaper lock (a string holding the reaper's token)
-- KEYS[2]: consumers: sorted set, member = consumer name, score = last seen (ms)
-- ARGV[1]: this reaper's token (random)
-- ARGV[2]: the interval (milliseconds, integer >= 1): the lock expires after it
-- Returns: the consumer names (array), or false when another reaper holds the lock.
-- Replay-safe: the lock already holding our token counts as ours.
-- idempotent: yes
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok and redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
return redis.call('ZRANGE', KEYS[2], 0, -1)
