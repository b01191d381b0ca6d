-- Store one TieredCache entry stamped with its tags' current versions, drop
-- related entries, and release the load lease if this caller holds it.
-- KEYS[1]: value key
-- KEYS[2]: lease key of the same entry
-- KEYS[3 .. 2+n]: tag version keys (n = ARGV[5])
-- KEYS[3+n ..]: value keys to delete in the same step (write-through invalidations)
-- ARGV[1]: serialized payload (bytes)
-- ARGV[2]: time to live, milliseconds (integer > 0)
-- ARGV[3]: delta: seconds the value took to compute (XFetch), decimal string
-- ARGV[4]: lease token to release, or "" for none
-- ARGV[5]: n, the number of tags
-- ARGV[6 .. 5+n]: the tags' escaped names (no spaces, no newlines)
-- ARGV[6+n .. 5+2n] (optional): each tag's version seen before the value was
--   computed ("" = no version key yet); if any has changed since, the value is
--   stale (an invalidation overtook the load) and is not stored
-- Returns: 1 if stored, 0 if refused as stale (the lease is released either way)
-- A missing tag version key is created with the server time in microseconds,
-- so an entry never carries version "0" (an evicted tag key cannot revive it).
-- Replay-safe: a second run writes the same entry again.
-- idempotent: yes
local n = tonumber(ARGV[5])
local function release()
  if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
    redis.call('DEL', KEYS[2])
  end
end
if #ARGV >= 5 + 2 * n then
  for i = 1, n do
    if (redis.call('GET', KEYS[2 + i]) or '') ~= ARGV[5 + n + i] then
      release()
      return 0
    end
  end
end
local now = nil
local parts = {'FRC1 ', ARGV[3], ' ', tostring(n), '\n'}
for i = 1, n do
  local ver = redis.call('GET', KEYS[2 + i])
  if not ver then
    if not now then
      local t = redis.call('TIME')
      now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
    end
    ver = now
    redis.call('SET', KEYS[2 + i], ver)
  end
  parts[#parts + 1] = ARGV[5 + i]
  parts[#parts + 1] = ' '
  parts[#parts + 1] = ver
  parts[#parts + 1] = '\n'
end
parts[#parts + 1] = ARGV[1]
redis.call('SET', KEYS[1], table.concat(parts), 'PX', ARGV[2])
for i = 3 + n, #KEYS do
  redis.call('DEL', KEYS[i])
end
release()
return 1
