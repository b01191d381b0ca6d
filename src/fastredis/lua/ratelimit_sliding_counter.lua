-- ratelimit_sliding_counter: the sliding-window counter
-- (SlidingWindowCounterLimiter), the previous fixed window weighted by its
-- remaining overlap plus the current one. One part of a composed rate-limit
-- script (ratelimit_prelude, the algorithm files, ratelimit_driver: see the
-- prelude).
-- KEYS (one per request, handed over by the driver): a hash
--   {w = current window index, n = current count, p = previous count};
--   expires two windows after the current window's start.
-- ARGV (the driver's limit triple): 'ctr', limit (int requests),
--   window (int microseconds).
-- Returns: nothing itself; registers ALGOS.ctr = {check, commit}.
-- idempotent: no (part of the composed rate-limit script: a hit consumes)

local sliding_counter = {}

function sliding_counter.check(key, limit, window)
  local idx = math.floor(now / window)
  local st = redis.call('HMGET', key, 'w', 'n', 'p')
  local w = tonumber(st[1])
  local cur, prev = 0, 0
  if w == idx then
    cur, prev = tonumber(st[2]) or 0, tonumber(st[3]) or 0
  elseif w == idx - 1 then
    prev = tonumber(st[2]) or 0
  end
  local start = idx * window
  local weight = 1 - (now - start) / window
  local est = prev * weight + cur
  local reset = 0
  if cur > 0 then reset = start + 2 * window - now
  elseif prev > 0 then reset = start + window - now end
  -- state: -1 when the stored window is current (commit is one HINCRBY),
  -- else the count that becomes the previous window's.
  local state = -1
  if w ~= idx then state = prev end
  local left = math.max(0, math.floor(limit - est))
  if cost > limit then return false, left, math.huge, reset, state end
  if est + cost <= limit then return true, left, 0, reset, state end
  local retry
  if cur + cost > limit then
    -- Only the next window can admit: there prev' = cur, so its weight must
    -- fall to (limit - cost) / cur.
    retry = start + window + window * (1 - (limit - cost) / cur) - now
  else
    retry = start + window * (1 - (limit - cost - cur) / prev) - now
  end
  -- Integer microseconds up: the estimate at now + retry must really admit.
  retry = math.max(1, math.ceil(retry))
  return false, left, retry, reset, state
end

function sliding_counter.commit(key, limit, window, r, prev)
  local idx = math.floor(now / window)
  if prev == -1 then
    redis.call('HINCRBY', key, 'n', num(cost))
  else
    redis.call('HSET', key, 'w', num(idx), 'n', num(cost), 'p', num(prev))
    pexpireat(key, (idx + 2) * window)
  end
  return (idx + 2) * window - now
end

ALGOS.ctr = sliding_counter
