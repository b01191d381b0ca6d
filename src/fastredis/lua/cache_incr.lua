-- Add to the integer value of one TieredCache entry, keeping its expiry
-- (Django's cache.incr/decr).
-- KEYS[1]: value key: a bare decimal integer, or an "FRC1 ..." envelope
--          around one (a value stored by TieredCache.get_or_set)
-- ARGV[1]: delta, a decimal integer (may be negative)
-- Returns: the new value as a decimal string (exact: Lua numbers are doubles,
--   so the INCRBY reply is not returned as a number), or nil (false) when
--   the key is missing;
--   an error reply ("ERR value is not an integer or out of range") when the
--   value is not an integer, as INCRBY gives, with nothing changed
-- An envelope is unwrapped to the bare integer (a Django cache has no tags),
-- then INCRBY adds exactly in 64 bits; the expiry is kept (INCRBY keeps it,
-- SET ... KEEPTTL keeps it).
-- idempotent: no
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
if string.sub(v, 1, 5) == 'FRC1 ' then
  local nl = string.find(v, '\n', 1, true)
  local ntags = nl and tonumber(string.match(string.sub(v, 1, nl - 1), '^FRC1 [^ ]+ (%d+)$'))
  if not ntags then
    return redis.error_reply('ERR value is not an integer or out of range')
  end
  local pos = nl + 1
  for _ = 1, ntags do
    local e = string.find(v, '\n', pos, true)
    if not e then
      return redis.error_reply('ERR value is not an integer or out of range')
    end
    pos = e + 1
  end
  local payload = string.sub(v, pos)
  if not string.match(payload, '^%-?%d+$') then
    return redis.error_reply('ERR value is not an integer or out of range')
  end
  redis.call('SET', KEYS[1], payload, 'KEEPTTL')
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])
