-- decaying_leaderboard_incr: apply forward-decay increments, rescaling them
-- when the landmark moved since the client read it, and rebasing atomically.
--
-- Stored score of a member = sum of w * exp(lambda * (t - L)); L is the
-- landmark (epoch seconds). Increments computed by a client against L_c are
-- multiplied by exp(lambda * (L_c - L)) here, so an increment that raced a
-- rebase is never applied at the wrong scale. If L_c > L the client asked for
-- a rebase: every stored score is multiplied by exp(-lambda * (L_c - L))
-- (ZUNIONSTORE k 1 k WEIGHTS f) and L_c becomes the landmark.
--
-- KEYS[1]: the sorted set of stored scores
-- KEYS[2]: the landmark L (string, epoch seconds, '%.17g')
-- ARGV[1]: lambda, per second (ln 2 / half_life)
-- ARGV[2]: rebase threshold: the largest exponent lambda * (t - L) kept (~300)
-- ARGV[3]: L_c, the landmark (epoch seconds) the values were computed against;
--          or 'now': values are raw weights of events at the server's TIME
-- ARGV[4..]: member, value pairs (finite numbers)
-- Returns: {L after the call ('%.17g'), number of distinct members changed}
-- idempotent: no (a second run adds the increments again)
local function fmt(x) return string.format('%.17g', x) end
local function finite(x) return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge end

local lam, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[2])
local Ls = nil
if raw then Ls = tonumber(raw) end

local Lc, mult = nil, 1.0
if ARGV[3] == 'now' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  Lc = Ls
  if Ls == nil or lam * (now - Ls) > limit then Lc = now end
  mult = math.exp(lam * (now - Lc))
else
  Lc = tonumber(ARGV[3])
end

-- A rebase multiplies every stored score by exp(-lambda * (Lc - Ls)); past
-- an exponent of ~708 that factor is a subnormal double with few significant
-- digits, so it is applied in steps of at most `limit` (each a normal double).
local rebase = nil
local newL = Ls
if Ls == nil then
  newL = Lc
elseif Lc > Ls then
  rebase = {}
  local x = lam * (Lc - Ls)
  while x > limit do
    rebase[#rebase + 1] = math.exp(-limit)
    x = x - limit
  end
  rebase[#rebase + 1] = math.exp(-x)
  newL = Lc
else
  mult = mult * math.exp(lam * (Lc - Ls))
end

local pending, order = {}, {}
for i = 4, #ARGV, 2 do
  local m = ARGV[i]
  local v = tonumber(ARGV[i + 1])
  if not finite(v) then
    return redis.error_reply('ERR weight is not a finite number')
  end
  local cur = pending[m]
  if cur == nil then
    cur = tonumber(redis.call('ZSCORE', KEYS[1], m) or '0')
    if rebase then
      for _, f in ipairs(rebase) do cur = cur * f end
    end
    order[#order + 1] = m
  end
  cur = cur + v * mult
  if not finite(cur) then
    return redis.error_reply('ERR score overflow: a stored score would be infinite')
  end
  pending[m] = cur
end

if rebase then
  for _, f in ipairs(rebase) do
    redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', fmt(f))
  end
end
if newL ~= Ls then
  redis.call('SET', KEYS[2], fmt(newL))
end
for _, m in ipairs(order) do
  redis.call('ZADD', KEYS[1], fmt(pending[m]), m)
end
return {fmt(newL), #order}
