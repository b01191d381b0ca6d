-- Invalidate TieredCache tags in O(1) each: move every tag version forward,
-- so entries stamped with an older version read as misses.
-- KEYS[i]: tag version keys
-- ARGV: none
-- Returns: {new version of tag 1, ...} (decimal strings)
-- The new version is max(old + 1, server time in microseconds): it keeps
-- rising across a restart without persistence. A replay bumps again (harmless).
-- idempotent: yes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local nv = math.max(cur + 1, now)
  local s = string.format('%.0f', nv)
  redis.call('SET', KEYS[i], s)
  out[i] = s
end
return out
