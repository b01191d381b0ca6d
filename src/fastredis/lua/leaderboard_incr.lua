-- leaderboard_incr: add deltas to members of a plain leaderboard, all or
-- nothing, never storing inf.
--
-- KEYS[1]: the sorted set of scores
-- ARGV[1..]: member, delta pairs (deltas are finite numbers, '%.17g' or repr)
-- Returns: the new scores as '%.17g' strings, in pair order
-- idempotent: no (a second run adds the deltas again)
local function fmt(x) return string.format('%.17g', x) end

local pending, order, out = {}, {}, {}
for i = 1, #ARGV, 2 do
  local m = ARGV[i]
  local cur = pending[m]
  if cur == nil then
    cur = tonumber(redis.call('ZSCORE', KEYS[1], m) or '0')
    order[#order + 1] = m
  end
  local d = tonumber(ARGV[i + 1])
  if d == nil or d ~= d or d == math.huge or d == -math.huge then
    return redis.error_reply('ERR delta is not a finite number')
  end
  cur = cur + d
  if cur == math.huge or cur == -math.huge then
    return redis.error_reply('ERR score overflow: the new score of a member would be infinite')
  end
  pending[m] = cur
  out[#out + 1] = fmt(cur)
end
for _, m in ipairs(order) do
  redis.call('ZADD', KEYS[1], fmt(pending[m]), m)
end
return out
