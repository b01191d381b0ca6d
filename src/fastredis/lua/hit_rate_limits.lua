-- hit_rate_limits: check (and, if every limit admits, consume) rate limits
-- for a batch of requests, atomically, with time from redis.call('TIME').
--
-- One engine serves every limiter: each algorithm is one function pair
-- (check, commit) below, and CompositeLimiter needs all of its limits checked
-- in ONE script, so the algorithms live together instead of in copies.
-- Nothing is consumed unless every limit of a request admits it, and a
-- rejected request writes nothing but the trimming of expired log entries.
--
-- KEYS[(r-1)*S + s]: the state key of limit s for request r (r = 1..R,
--   R = #KEYS / S); one key per (limit, request key):
--   'log' -> sorted set, members '<us>:<rid>:<r>:<j>', score = time in us
--   'fix' -> hash {w = window index, n = count}; expires at the window's end
--   'ctr' -> hash {w = current window index, n = current count, p = previous count}
--   'gcra'-> string: theoretical arrival time (TAT) in us, '%.17g'
-- ARGV[1]: mode, 'hit' (check and consume) or 'peek' (check, consume nothing)
-- ARGV[2]: S, the number of limits per request
-- ARGV[3]: cost, a positive integer, the same for every request of the batch
-- ARGV[4]: rid, a request id unique to this call (makes log members unique)
-- ARGV[5 + 3*(s-1)], ARGV[6 + 3*(s-1)], ARGV[7 + 3*(s-1)]: limit s as
--   algorithm ('log' | 'fix' | 'ctr' | 'gcra'), then
--   log/fix/ctr: limit (int requests), window (int microseconds);
--   gcra: capacity (int tokens), emission interval (microseconds per token, float)
-- Returns: a flat array, 5 entries per request, in request order:
--   allowed (1/0), binding limit s (1-based: the denying limit with the
--   longest wait, or the admitting limit with the fewest remaining),
--   remaining (int; after this request in 'hit' mode when allowed, else
--   before it), retry_after (seconds, '%.17g', 'inf'
--   when cost exceeds a limit, '0' when allowed), reset_after (seconds
--   until the binding limit is back to full, '%.17g').

local mode = ARGV[1]
local S = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local rid = ARGV[4]
local consume = mode == 'hit'

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- Numbers passed to redis.call go through '%.14g' unless formatted here:
-- microsecond timestamps need 16 digits.
local function num(x) return string.format('%.17g', x) end

local function fmt(us)
  if us == math.huge then return 'inf' end
  if us < 0 then us = 0 end
  return string.format('%.17g', us / 1000000)
end

-- Expiry in whole milliseconds, rounded up so a key never dies early.
local function pexpireat(key, at_us)
  redis.call('PEXPIREAT', key, num(math.ceil(at_us / 1000)))
end

-- Each check returns: ok, remaining now (before this request), retry_us,
-- reset_us now, reset_us if committed, and the state that commit needs.
-- When ok, remaining after committing is exactly remaining now - cost.

-- Exact sliding log: the admissions in (now - window, now].
local function check_log(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now - window))
  local n = redis.call('ZCARD', key)
  local newest = 0
  if n > 0 then
    newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  end
  local reset = 0
  if n > 0 then reset = newest + window - now end
  if cost > limit then return false, limit - n, math.huge, reset, window, n end
  if n + cost <= limit then return true, limit - n, 0, reset, window, n end
  -- Wait until the (n + cost - limit)-th oldest admission leaves the window.
  local k = n + cost - limit
  local s = tonumber(redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')[2])
  return false, limit - n, s + window - now, reset, window, n
end

local function commit_log(key, limit, window, r)
  local args = {}
  for j = 1, cost do
    args[#args + 1] = num(now)
    args[#args + 1] = num(now) .. ':' .. rid .. ':' .. r .. ':' .. j
  end
  redis.call('ZADD', key, unpack(args))
  pexpireat(key, now + window)
end

-- Fixed window aligned to multiples of window since the epoch.
local function check_fix(key, limit, window)
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
  if cost > limit then return false, limit - n, math.huge, reset, window_end - now, state end
  if n + cost <= limit then return true, limit - n, 0, reset, window_end - now, state end
  return false, limit - n, window_end - now, reset, window_end - now, state
end

local function commit_fix(key, limit, window, r, idx)
  if idx == -1 then
    redis.call('HINCRBY', key, 'n', num(cost))
  else
    redis.call('HSET', key, 'w', num(idx), 'n', num(cost))
    pexpireat(key, (idx + 1) * window)
  end
end

-- Sliding window counter: previous window weighted by its remaining overlap.
local function check_ctr(key, limit, window)
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
  local reset_commit = start + 2 * window - now
  if cost > limit then return false, left, math.huge, reset, reset_commit, state end
  if est + cost <= limit then return true, left, 0, reset, reset_commit, state end
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
  return false, left, retry, reset, reset_commit, state
end

local function commit_ctr(key, limit, window, r, prev)
  if prev == -1 then
    redis.call('HINCRBY', key, 'n', num(cost))
  else
    local idx = math.floor(now / window)
    redis.call('HSET', key, 'w', num(idx), 'n', num(cost), 'p', num(prev))
    pexpireat(key, (idx + 2) * window)
  end
end

-- Token bucket as GCRA: capacity tokens, one token per `interval` us.
local function check_gcra(key, capacity, interval)
  local tat = tonumber(redis.call('GET', key) or 0) or 0
  if tat < now then tat = now end
  local tau = capacity * interval
  local function left(at) return math.max(0, math.floor((tau - (at - now)) / interval + 1e-9)) end
  local new_tat = tat + cost * interval
  if cost > capacity then return false, left(tat), math.huge, tat - now, new_tat - now, new_tat end
  local allow_at = new_tat - tau
  if allow_at <= now then return true, left(tat), 0, tat - now, new_tat - now, new_tat end
  return false, left(tat), allow_at - now, tat - now, new_tat - now, new_tat
end

local function commit_gcra(key, capacity, interval, r, new_tat)
  redis.call('SET', key, num(new_tat))
  pexpireat(key, new_tat)
end

local checks = {log = check_log, fix = check_fix, ctr = check_ctr, gcra = check_gcra}
local commits = {log = commit_log, fix = commit_fix, ctr = commit_ctr, gcra = commit_gcra}

local algs, p1, p2 = {}, {}, {}
for s = 1, S do
  local b = 5 + 3 * (s - 1)
  algs[s] = ARGV[b]
  p1[s] = tonumber(ARGV[b + 1])
  p2[s] = tonumber(ARGV[b + 2])
  if not checks[algs[s]] then return redis.error_reply('ERR unknown rate-limit algorithm ' .. tostring(algs[s])) end
end

local out = {}
local R = #KEYS / S
-- Reused for every request: a batch of thousands allocates no tables per request.
local ok, rem, retry, reset, reset_c, state = {}, {}, {}, {}, {}, {}
for r = 1, R do
  local base = (r - 1) * S
  local all_ok = true
  for s = 1, S do
    ok[s], rem[s], retry[s], reset[s], reset_c[s], state[s] = checks[algs[s]](KEYS[base + s], p1[s], p2[s])
    if not ok[s] then all_ok = false end
  end
  local bind = 1
  if all_ok then
    if consume then
      for s = 1, S do
        commits[algs[s]](KEYS[base + s], p1[s], p2[s], r, state[s])
        rem[s] = rem[s] - cost
        reset[s] = reset_c[s]
      end
    end
    for s = 2, S do if rem[s] < rem[bind] then bind = s end end
    out[#out + 1] = 1
    out[#out + 1] = bind
    out[#out + 1] = rem[bind]
    out[#out + 1] = '0'
    out[#out + 1] = fmt(reset[bind])
  else
    bind = nil
    for s = 1, S do
      if not ok[s] and (bind == nil or retry[s] > retry[bind]) then bind = s end
    end
    local remaining = rem[1]
    for s = 2, S do if rem[s] < remaining then remaining = rem[s] end end
    out[#out + 1] = 0
    out[#out + 1] = bind
    out[#out + 1] = remaining
    out[#out + 1] = fmt(retry[bind])
    out[#out + 1] = fmt(reset[bind])
  end
end
return out
