-- ratelimit_token_bucket: a token bucket run as GCRA (TokenBucketLimiter):
-- `capacity` tokens, one token back every `interval` us. One part of a
-- composed rate-limit script (ratelimit_prelude, the algorithm files,
-- ratelimit_driver: see the prelude).
-- KEYS (one per request, handed over by the driver): a string, the
--   theoretical arrival time (TAT) in us, '%.17g'; expires at the TAT, when
--   the bucket is full again.
-- ARGV (the driver's limit triple): 'gcra', capacity (int tokens),
--   interval (microseconds per token, float).
-- Returns: nothing itself; registers ALGOS.gcra = {check, commit}.
-- idempotent: no (part of the composed rate-limit script: a hit consumes)

local token_bucket = {}

function token_bucket.check(key, capacity, interval)
  local tat = tonumber(redis.call('GET', key) or 0) or 0
  if tat < now then tat = now end
  local tau = capacity * interval
  local left = math.max(0, math.floor((tau - (tat - now)) / interval + 1e-9))
  local new_tat = tat + cost * interval
  if cost > capacity then return false, left, math.huge, tat - now, new_tat end
  local allow_at = new_tat - tau
  if allow_at <= now then return true, left, 0, tat - now, new_tat end
  return false, left, allow_at - now, tat - now, new_tat
end

function token_bucket.commit(key, capacity, interval, r, new_tat)
  redis.call('SET', key, num(new_tat))
  pexpireat(key, new_tat)
  return new_tat - now
end

ALGOS.gcra = token_bucket
