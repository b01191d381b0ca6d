-- ratelimit_fixed_window: a fixed window (FixedWindowLimiter), windows
-- aligned to multiples of `window` since the epoch. One part of a composed
-- rate-limit script (ratelimit_prelude, the algorithm files, ratelimit_driver:
-- see the prelude).
-- KEYS (one per request, handed over by the driver): a hash
--   {w = window index, n = count}; expires at the window's end.
-- ARGV (the driver's limit triple): 'fix', limit (int requests),
--   window (int microseconds).
-- Returns: nothing itself; registers ALGOS.fix = {check, commit}.
-- idempotent: no (part of the composed rate-limit script: a hit consumes)

local fixed_window = {}

function fixed_window.check(key, limit, window)
  local idx = math.floor(now / window)
  local st = redis.call('HMGET', key, 'w', 'n')
  local n = 0
  if tonumber(st[1]) == idx then n = tonumber(st[2]) or 0 end
  local window_end = (idx + 1) * window
  local reset = 0
  if n > 0 then reset = window_end - now end
  -- state: -1 when the stored window is current (commit is one HINCRBY).
  local state = -1
  if tonumber(st[1]) ~= idx then state = idx end
  if cost > limit then return false, limit - n, math.huge, reset, state end
  if n + cost <= limit then return true, limit - n, 0, reset, state end
  return false, limit - n, window_end - now, reset, state
end

function fixed_window.commit(key, limit, window, r, idx)
  if idx == -1 then
    redis.call('HINCRBY', key, 'n', num(cost))
    idx = math.floor(now / window)
  else
    redis.call('HSET', key, 'w', num(idx), 'n', num(cost))
    pexpireat(key, (idx + 1) * window)
  end
  return (idx + 1) * window - now
end

ALGOS.fix = fixed_window
