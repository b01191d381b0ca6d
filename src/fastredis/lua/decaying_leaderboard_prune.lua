-- decaying_leaderboard_prune: drop members whose |decayed score| < floor.
--
-- Decayed = stored / exp(lambda * (now - L)), so the bound on stored scores
-- is floor * exp(lambda * (now - L)), the same for every member.
--
-- KEYS[1]: the sorted set of stored scores
-- KEYS[2]: the landmark L (epoch seconds)
-- ARGV[1]: lambda, per second
-- ARGV[2]: floor (a finite number >= 0, in decayed score units)
-- ARGV[3]: now in epoch seconds, or '' for the server's TIME
-- Returns: the number of members removed
-- idempotent: yes
local raw = redis.call('GET', KEYS[2])
if not raw then return 0 end
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local bound = tonumber(ARGV[2]) * math.exp(tonumber(ARGV[1]) * (now - tonumber(raw)))
if bound ~= bound or bound == math.huge then
  local n = redis.call('ZCARD', KEYS[1])
  redis.call('DEL', KEYS[1])
  return n
end
local b = string.format('%.17g', bound)
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '(-' .. b, '(' .. b)
