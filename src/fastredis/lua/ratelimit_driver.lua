-- ratelimit_driver: check (and, if every limit admits, consume) rate limits
-- for a batch of requests, atomically, with time from redis.call('TIME').
-- The tail of a composed script: ratelimit_prelude, then the algorithm files
-- of the limits used (each registers ALGOS[code]), then this file. Nothing is
-- consumed unless every limit of a request admits it, and a rejected request
-- writes nothing but the trimming of expired log entries.
--
-- KEYS[(r-1)*S + s]: the state key of limit s for request r (r = 1..R,
--   R = #KEYS / S); its type is the algorithm's (see its file)
-- ARGV[1]: mode, 'hit' (check and consume) or 'peek' (check, consume nothing)
-- ARGV[2]: S, the number of limits per request
-- ARGV[3]: cost, a positive integer, the same for every request of the batch
-- ARGV[4]: rid, a request id unique to this call (makes log members unique)
-- ARGV[5 + 3*(s-1)], ARGV[6 + 3*(s-1)], ARGV[7 + 3*(s-1)]: limit s as
--   algorithm code ('log' | 'fix' | 'ctr' | 'gcra', which must be in this
--   script), then log/fix/ctr: limit (int requests), window (int
--   microseconds); gcra: capacity (int tokens), interval (us per token, float)
-- Returns: a flat array, 5 entries per request, in request order:
--   allowed (1/0), binding limit s (1-based: the denying limit with the
--   longest wait, or the admitting limit with the fewest remaining),
--   remaining (int; after this request in 'hit' mode when allowed, else
--   before it), retry_after (seconds, '%.17g', 'inf' when cost exceeds a
--   limit, '0' when allowed), reset_after (seconds until the binding limit
--   is back to full, '%.17g').
-- idempotent: no (a hit consumes; a second run consumes again)

local S = tonumber(ARGV[2])
local checks, commits, p1, p2 = {}, {}, {}, {}
for s = 1, S do
  local b = 5 + 3 * (s - 1)
  local alg = ALGOS[ARGV[b]]
  if not alg then
    return redis.error_reply('ERR rate-limit algorithm ' .. tostring(ARGV[b]) .. ' is not in this script')
  end
  checks[s], commits[s] = alg.check, alg.commit
  p1[s] = tonumber(ARGV[b + 1])
  p2[s] = tonumber(ARGV[b + 2])
end

local out, o = {}, 0
local R = #KEYS / S
-- Reused for every request: a batch of thousands allocates no tables per request.
local ok, rem, retry, reset, state = {}, {}, {}, {}, {}
for r = 1, R do
  local base = (r - 1) * S
  local all_ok = true
  for s = 1, S do
    ok[s], rem[s], retry[s], reset[s], state[s] = checks[s](KEYS[base + s], p1[s], p2[s])
    if not ok[s] then all_ok = false end
  end
  local bind = 1
  if all_ok then
    if consume then
      for s = 1, S do
        reset[s] = commits[s](KEYS[base + s], p1[s], p2[s], r, state[s])
        rem[s] = rem[s] - cost
      end
    end
    for s = 2, S do if rem[s] < rem[bind] then bind = s end end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = 1, bind, rem[bind], '0', fmt(reset[bind])
  else
    bind = nil
    for s = 1, S do
      if not ok[s] and (bind == nil or retry[s] > retry[bind]) then bind = s end
    end
    local remaining = rem[1]
    for s = 2, S do if rem[s] < remaining then remaining = rem[s] end end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = 0, bind, remaining, fmt(retry[bind]), fmt(reset[bind])
  end
  o = o + 5
end
return out
