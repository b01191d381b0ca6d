-- Read, touch, update or delete fields of a live session; unknown ids change nothing.
-- KEYS[1]: session hash
-- KEYS[2]: per-tag index ZSET of the session's tag (member = secret, score = expiry in ms)
-- ARGV[1]: ttl (milliseconds, integer > 0)
-- ARGV[2]: "1" to slide the TTL (re-arm it to ARGV[1]), "0" to leave it
-- ARGV[3]: index member (the session secret)
-- ARGV[4]: "1" to return the hash contents, "0" to return 1
-- ARGV[5]: absolute lifetime max_age (milliseconds, integer >= 0; 0 = none), counted from
--          the session's creation (m:c); a session from before m:c existed gets m:c = now
-- ARGV[6]: max bytes of session data (names without "d:" plus values; 0 = no limit)
-- ARGV[7]: max number of data fields (0 = no limit)
-- ARGV[8]: n = number of fields to delete, then ARGV[9 .. 8+n] those fields
-- ARGV[9+n ..]: field, value pairs to set
-- Returns: false (nil) when the session does not exist or outlived max_age (it is then
--          deleted); -1 when the change would take the data past ARGV[6] bytes, -2 past
--          ARGV[7] fields (nothing changed; a change that does not grow an already
--          oversized session passes); else the flat HGETALL list (ARGV[4] = "1") or 1.
-- Replay-safe: HSET/HDEL/PEXPIRE are idempotent, and the m:n/m:f counters are
-- recomputed from the fields' old and new sizes.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_age = tonumber(ARGV[5])
local created = tonumber(redis.call('HGET', KEYS[1], 'm:c'))
if not created then
  created = now
  redis.call('HSET', KEYS[1], 'm:c', now)
end
local life = tonumber(ARGV[1])
if max_age > 0 then
  local left = created + max_age - now
  if left <= 0 then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[3])
    return false
  end
  if left < life then
    life = left
  end
end
local ndel = tonumber(ARGV[8])
local first_set = 9 + ndel
if ndel > 0 or #ARGV >= first_set then
  local size = tonumber(redis.call('HGET', KEYS[1], 'm:n'))
  local nfields = tonumber(redis.call('HGET', KEYS[1], 'm:f'))
  if not size or not nfields then
    -- a session from before the counters: count its data once
    size, nfields = 0, 0
    local all = redis.call('HGETALL', KEYS[1])
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 2) == 'd:' then
        size = size + #all[i] - 2 + #all[i + 1]
        nfields = nfields + 1
      end
    end
  end
  local old_size, old_fields = size, nfields
  local gone = {}
  for i = 9, 8 + ndel do
    local f = ARGV[i]
    if string.sub(f, 1, 2) == 'd:' and not gone[f] then
      local v = redis.call('HGET', KEYS[1], f)
      if v then
        gone[f] = true
        size = size - (#f - 2 + #v)
        nfields = nfields - 1
      end
    end
  end
  for i = first_set, #ARGV - 1, 2 do
    local f = ARGV[i]
    local v = (not gone[f]) and redis.call('HGET', KEYS[1], f)
    if v then
      size = size - (#f - 2 + #v)
    else
      nfields = nfields + 1
    end
    size = size + #f - 2 + #ARGV[i + 1]
  end
  local max_bytes, max_fields = tonumber(ARGV[6]), tonumber(ARGV[7])
  if max_bytes > 0 and size > max_bytes and size > old_size then
    return -1
  end
  if max_fields > 0 and nfields > max_fields and nfields > old_fields then
    return -2
  end
  for f in pairs(gone) do
    redis.call('HDEL', KEYS[1], f)
  end
  for i = first_set, #ARGV - 1, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('HSET', KEYS[1], 'm:n', size, 'm:f', nfields)
end
if ARGV[2] == '1' then
  redis.call('PEXPIRE', KEYS[1], life)
  if redis.call('HEXISTS', KEYS[1], 'm:uid') == 1 then
    redis.call('ZADD', KEYS[2], now + life, ARGV[3])
    local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1))
  end
end
if ARGV[4] == '1' then
  return redis.call('HGETALL', KEYS[1])
end
return 1
