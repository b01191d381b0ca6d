-- Move a session to a new id (session-fixation defence): the old id stops working.
-- KEYS[1]: old session hash
-- KEYS[2]: new session hash (same hash tag as KEYS[1])
-- KEYS[3]: per-tag index ZSET of the tag (member = secret, score = expiry in ms)
-- ARGV[1]: ttl of the new session (milliseconds, integer > 0)
-- ARGV[2]: old index member (old secret)
-- ARGV[3]: new index member (new secret)
-- ARGV[4]: absolute lifetime max_age (milliseconds, integer >= 0; 0 = none): rotation keeps
--          the creation time (m:c), so rotating never extends a session past it
-- Returns: 1 when the session now lives under the new id, 0 when the old id was unknown
--          (or outlived max_age: it is then deleted).
-- Replay-safe: a second run finds the old key gone and the new one present, and returns 1.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return 1
  end
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local max_age = tonumber(ARGV[4])
local created = tonumber(redis.call('HGET', KEYS[1], 'm:c'))
if not created then
  created = now
  redis.call('HSET', KEYS[1], 'm:c', now)
end
if max_age > 0 then
  local left = created + max_age - now
  if left <= 0 then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return 0
  end
  if left < ttl then
    ttl = left
  end
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[2], 'm:uid') == 1 then
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
  local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[3], math.max(tonumber(top[2]) - now, 1))
end
return 1
