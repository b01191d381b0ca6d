-- Create (or idempotently re-create) a session hash and index it under its user's tag.
-- KEYS[1]: session hash (prefix:{tag}:secret)
-- KEYS[2]: per-tag index ZSET (prefix:{tag}:idx), member = secret, score = expiry (ms since epoch)
-- ARGV[1]: ttl (milliseconds, integer > 0)
-- ARGV[2]: user id ("" = anonymous session, not indexed)
-- ARGV[3]: index member (the session secret)
-- ARGV[4]: absolute lifetime max_age (milliseconds, integer >= 0; 0 = none): the session
--          ends max_age after its creation however often it is used
-- ARGV[5..]: field, value pairs to store (data fields carry the "d:" prefix; their
--          count and bytes were checked against the store's limits by the client)
-- Returns: 1
-- Bookkeeping fields: m:v format version, m:uid owner, m:c creation time (server ms),
-- m:n bytes of data (names without "d:" plus values), m:f number of data fields.
-- Replay-safe: the hash is rebuilt from scratch, so running twice stores the same state.
-- idempotent: yes
local ttl = tonumber(ARGV[1])
local max_age = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if max_age > 0 and max_age < ttl then
  ttl = max_age
end
local size, nfields = 0, 0
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm:v', '2', 'm:c', now)
for i = 5, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  size = size + #ARGV[i] - 2 + #ARGV[i + 1]
  nfields = nfields + 1
end
redis.call('HSET', KEYS[1], 'm:n', size, 'm:f', nfields)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'm:uid', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ttl)
if ARGV[2] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1))
end
return 1
