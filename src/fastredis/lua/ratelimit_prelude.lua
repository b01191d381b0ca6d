-- ratelimit_prelude: the shared head of every rate-limit script. A limiter's
-- script is this file, then one file per algorithm it uses
-- (ratelimit_<algorithm>.lua), then ratelimit_driver.lua, concatenated into
-- one chunk by fastredis.scripts.LuaScript.compose. ratelimit_driver.lua
-- documents the whole script's KEYS, ARGV and Returns.
-- KEYS: not read here (the driver hands each algorithm its key).
-- ARGV[1]: mode, 'hit' (check and consume) or 'peek' (consume nothing)
-- ARGV[3]: cost, a positive integer, the same for every request of the batch
-- ARGV[4]: rid, a request id unique to this call (makes log members unique)
-- Returns: nothing; defines, for the algorithm files and the driver, the
--   server time `now` (us), `cost`, `rid`, `consume`, the helpers num, fmt,
--   pexpireat, and ALGOS, where each algorithm file registers
--   ALGOS[code] = {check = ..., commit = ...}:
--   check(key, p1, p2) -> ok, remaining now (before this request), retry_us,
--     reset_us now (needed only when not ok or not consume), state for commit;
--     when ok, remaining after committing is exactly remaining now - cost;
--   commit(key, p1, p2, r, state) -> reset_us after committing (r: the
--     request's 1-based position in the batch).
-- idempotent: no (part of the composed rate-limit script: a hit consumes)

local consume = ARGV[1] == 'hit'
local cost = tonumber(ARGV[3])
local rid = ARGV[4]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- Numbers passed to redis.call go through '%.14g' unless formatted here:
-- microsecond timestamps need 16 digits.
local function num(x) return string.format('%.17g', x) end

-- A batch mostly repeats the same few values (now is fixed for the whole
-- call): each string is formatted once per call.
local fmt_memo, expiry_memo = {}, {}

local function fmt(us)
  local s = fmt_memo[us]
  if s then return s end
  if us == math.huge then s = 'inf'
  elseif us <= 0 then s = '0'
  else s = string.format('%.17g', us / 1000000) end
  fmt_memo[us] = s
  return s
end

-- Expiry in whole milliseconds, rounded up so a key never dies early.
local function pexpireat(key, at_us)
  local ms = expiry_memo[at_us]
  if not ms then ms = num(math.ceil(at_us / 1000)); expiry_memo[at_us] = ms end
  redis.call('PEXPIREAT', key, ms)
end

local ALGOS = {}
