-- ratelimit_sliding_log: the exact sliding log (SlidingWindowLimiter), the
-- admissions in (now - window, now]. One part of a composed rate-limit script
-- (ratelimit_prelude, the algorithm files, ratelimit_driver: see the prelude).
-- KEYS (one per request, handed over by the driver): a sorted set, one
--   member '<now us>:<rid>:<r>:<j>' per admitted unit of cost, score = its
--   admission time in us; expires `window` after the newest admission.
-- ARGV (the driver's limit triple): 'log', limit (int requests),
--   window (int microseconds).
-- Returns: nothing itself; registers ALGOS.log = {check, commit}.
-- idempotent: no (part of the composed rate-limit script: a hit consumes)

local sliding_log = {}

-- Per script call, now is fixed: each window's strings are built once, and
-- a key repeated in the batch is trimmed once and given its expiry once
-- (touched[key]: 1 = trimmed at now, 2 = also expires at now + window).
local now_s = num(now)
local member_head = now_s .. ':' .. rid .. ':'
local cutoffs, touched = {}, {}

function sliding_log.check(key, limit, window)
  if not touched[key] then
    local cutoff = cutoffs[window]
    if not cutoff then cutoff = num(now - window); cutoffs[window] = cutoff end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    touched[key] = 1
  end
  local n = redis.call('ZCARD', key)
  local ok = n + cost <= limit
  local reset, retry = 0, 0
  -- The newest admission only matters for a reset that commit will not
  -- replace: on the admitting hit path (the hot one) it is not read.
  if n > 0 and not (ok and consume) then
    reset = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]) + window - now
  end
  if cost > limit then
    retry = math.huge
  elseif not ok then
    -- Wait until the (n + cost - limit)-th oldest admission leaves the window.
    local k = n + cost - limit
    retry = tonumber(redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')[2]) + window - now
  end
  return ok, limit - n, retry, reset
end

function sliding_log.commit(key, limit, window, r)
  local head = member_head .. r .. ':'
  if cost == 1 then
    redis.call('ZADD', key, now_s, head .. 1)
  else
    local args = {}
    for j = 1, cost do
      args[2 * j - 1] = now_s
      args[2 * j] = head .. j
    end
    redis.call('ZADD', key, unpack(args))
  end
  if touched[key] ~= 2 then
    pexpireat(key, now + window)
    touched[key] = 2
  end
  return window
end

ALGOS.log = sliding_log
