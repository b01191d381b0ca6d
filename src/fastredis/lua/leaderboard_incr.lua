-- leaderboard_incr: add deltas to members of a plain leaderboard, all or
-- nothing, never storing inf, and at most once per call token.
--
-- KEYS[1]: the sorted set of scores
-- KEYS[2]: the once-key of this call (same hash tag); if it exists the call
--          already ran (a retry after a lost reply) and nothing is applied
-- ARGV[1]: once-key lifetime in seconds (integer)
-- ARGV[2..]: member, delta pairs (deltas are finite numbers, '%.17g' or repr)
-- Returns: the new scores as '%.17g' strings, in pair order (on a replayed
--          call: the current scores)
-- idempotent: yes
local function fmt(x) return string.format('%.17g', x) end

local replay = redis.call('SET', KEYS[2], '1', 'EX', ARGV[1], 'NX') == false
local pending, order, out = {}, {}, {}
for i = 2, #ARGV, 2 do
  local m = ARGV[i]
  local cur = pending[m]
  if cur == nil then
    cur = tonumber(redis.call('ZSCORE', KEYS[1], m) or '0')
    order[#order + 1] = m
  end
  if not replay then
    local d = tonumber(ARGV[i + 1])
    if d == nil or d ~= d or d == math.huge or d == -math.huge then
      redis.call('DEL', KEYS[2])
      return redis.error_reply('ERR delta is not a finite number')
    end
    cur = cur + d
    if cur == math.huge or cur == -math.huge then
      redis.call('DEL', KEYS[2])
      return redis.error_reply('ERR score overflow: the new score of a member would be infinite')
    end
  end
  pending[m] = cur
  out[#out + 1] = fmt(cur)
end
if not replay then
  for _, m in ipairs(order) do
    redis.call('ZADD', KEYS[1], fmt(pending[m]), m)
  end
end
return out
