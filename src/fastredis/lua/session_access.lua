-- Read, touch, update or delete fields of a live session; unknown ids change nothing.
-- KEYS[1]: session hash
-- KEYS[2]: per-user index ZSET of the session's tag (member = secret, score = expiry in ms)
-- ARGV[1]: ttl (milliseconds, integer > 0)
-- ARGV[2]: "1" to slide the TTL (re-arm it to ARGV[1]), "0" to leave it
-- ARGV[3]: index member (the session secret)
-- ARGV[4]: "1" to return the hash contents, "0" to return 1
-- ARGV[5]: n = number of fields to delete, then ARGV[6 .. 5+n] those fields
-- ARGV[6+n ..]: field, value pairs to set
-- Returns: false (nil) when the session does not exist; else the flat HGETALL
--          list (ARGV[4] = "1") or 1.
-- Replay-safe: HSET/HDEL/PEXPIRE are idempotent.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local ndel = tonumber(ARGV[5])
for i = 6, 5 + ndel do
  if string.sub(ARGV[i], 1, 2) == 'd:' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
for i = 6 + ndel, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if ARGV[2] == '1' then
  local ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
  if redis.call('HEXISTS', KEYS[1], 'm:uid') == 1 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
    local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1))
  end
end
if ARGV[4] == '1' then
  return redis.call('HGETALL', KEYS[1])
end
return 1
