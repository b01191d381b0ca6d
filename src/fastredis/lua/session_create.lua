-- Create (or idempotently re-create) a session hash and index it under its user.
-- KEYS[1]: session hash (prefix:{tag}:secret)
-- KEYS[2]: per-user index ZSET (prefix:{tag}:idx), member = secret, score = expiry (ms since epoch)
-- ARGV[1]: ttl (milliseconds, integer > 0)
-- ARGV[2]: user id ("" = anonymous session, not indexed)
-- ARGV[3]: index member (the session secret)
-- ARGV[4..]: field, value pairs to store (fields already carry their "d:"/"m:" prefix)
-- Returns: 1
-- Replay-safe: the hash is rebuilt from scratch, so running twice stores the same state.
-- idempotent: yes
local ttl = tonumber(ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm:v', '1')
if #ARGV >= 5 then
  for i = 4, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'm:uid', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ttl)
if ARGV[2] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1))
end
return 1
