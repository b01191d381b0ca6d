-- Move a session to a new id (session-fixation defence): the old id stops working.
-- KEYS[1]: old session hash
-- KEYS[2]: new session hash (same hash tag as KEYS[1])
-- KEYS[3]: per-user index ZSET of the tag (member = secret, score = expiry in ms)
-- ARGV[1]: ttl of the new session (milliseconds, integer > 0)
-- ARGV[2]: old index member (old secret)
-- ARGV[3]: new index member (new secret)
-- Returns: 1 when the session now lives under the new id, 0 when the old id was unknown.
-- Replay-safe: a second run finds the old key gone and the new one present, and returns 1.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return 1
  end
  return 0
end
local ttl = tonumber(ARGV[1])
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[2], 'm:uid') == 1 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
  local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[3], math.max(tonumber(top[2]) - now, 1))
end
return 1
