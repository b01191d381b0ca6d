-- queue_prelude: the shared head of the WorkQueue/Stack scripts (queue_*.lua),
-- joined to each one into one chunk by fastredis.scripts.LuaScript.compose.
-- KEYS: not read here. ARGV: not read here.
-- Returns: nothing; defines, for the script that follows:
--   parse(e) -> header, id, failures, colon | nil for an element that is not
--     "<id: 24 hex chars>.<failures: decimal>:<payload>" (header = "<id>.<failures>");
--   with_failures(e, id, colon, n) -> the same element with the failure count n;
--   now_ms() -> server time in milliseconds (redis.call('TIME')).
-- idempotent: yes (defines functions only; each queue_*.lua says its own)
local function parse(e)
  if #e < 27 or string.sub(e, 25, 25) ~= '.' then return nil end
  local colon = string.find(e, ':', 26, true)
  if not colon then return nil end
  local n = tonumber(string.sub(e, 26, colon - 1))
  if not n then return nil end
  return string.sub(e, 1, colon - 1), string.sub(e, 1, 24), n, colon
end

local function with_failures(e, id, colon, n)
  return id .. '.' .. string.format('%d', n) .. string.sub(e, colon)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
