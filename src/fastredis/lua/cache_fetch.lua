-- Read one TieredCache entry; optionally take the load lease on a miss, or
-- for an XFetch early refresh of a hit.
-- KEYS[1]: value key (string: "FRC1 <delta> <ntags>\n<tag> <version>\n...<payload>")
-- KEYS[2]: lease key of the same entry (same hash tag)
-- KEYS[3 ..]: tag version keys whose versions to report (optional)
-- ARGV[1]: mode: "0" read only, "1" take the lease on a miss / early refresh
-- ARGV[2]: lease token (unique per load attempt)
-- ARGV[3]: lease time to live, milliseconds (integer > 0)
-- ARGV[4]: XFetch draw -beta*ln(U), U uniform in (0, 1] (unitless, >= 0)
-- Returns: {state, value or nil, ms, version of KEYS[3] or "", ...}; state is
--   "hit"     value found; ms = its PTTL
--   "refresh" value found and this caller holds the lease to recompute it early
--   "miss"    no value (mode 0); ms = -2
--   "lease"   no value and this caller holds the lease: load it now; ms = -2
--   "wait"    no value and another caller holds the lease; ms = the lease PTTL
--   "foreign" the key holds a non-string type; treated as a miss
-- Replay-safe: a lease that already holds our token counts as taken by us.
-- the tag versions before a load, so the store can refuse a value that an
-- invalidation overtook while it was being computed; in mode "1" a missing
-- tag version key is created (server time in microseconds), so concurrent
-- first loads of one tag agree on its version
-- idempotent: yes
local function reply(state, value, ms)
  local out = {state, value, ms}
  for i = 3, #KEYS do
    local ver = redis.call('GET', KEYS[i])
    if not ver and ARGV[1] == '1' then
      local t = redis.call('TIME')
      ver = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
      redis.call('SET', KEYS[i], ver)
    end
    out[#out + 1] = ver or ''
  end
  return out
end

local ok, v = pcall(redis.call, 'GET', KEYS[1])
if not ok then
  return reply('foreign', false, -2)
end

local function take_lease()
  if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return true
  end
  return redis.call('GET', KEYS[2]) == ARGV[2]
end

if v then
  local pttl = redis.call('PTTL', KEYS[1])
  if ARGV[1] == '1' and pttl > 0 then
    local delta = tonumber(string.match(v, '^FRC1 ([^ ]+) '))
    if delta and delta > 0 and delta * 1000 * tonumber(ARGV[4]) >= pttl and take_lease() then
      return reply('refresh', v, pttl)
    end
  end
  return reply('hit', v, pttl)
end

if ARGV[1] ~= '1' then
  return reply('miss', false, -2)
end
if take_lease() then
  return reply('lease', false, -2)
end
return reply('wait', false, redis.call('PTTL', KEYS[2]))
