-- leaderboard_range: read a slice of a leaderboard (by rank, or around a
-- member) together with what a decayed read needs, atomically.
--
-- KEYS[1]: the sorted set of scores
-- KEYS[2]: (decaying leaderboards only) the landmark L, epoch seconds
-- ARGV[1]: 'desc' (highest first) or 'asc'
-- ARGV[2]: 'range' or 'around'
-- ARGV[3]: range: first rank (0-based); around: the member
-- ARGV[4]: range: last rank (inclusive); around: n, members on each side
-- Returns: {server time seconds, server time microseconds, L or '',
--           rank of the first entry (-1 when the member is absent),
--           member1, score1, member2, score2, ...} (scores as Redis strings)
-- idempotent: yes
local desc = ARGV[1] == 'desc'
local t = redis.call('TIME')
local L = ''
if #KEYS >= 2 then L = redis.call('GET', KEYS[2]) or '' end
local first, last
if ARGV[2] == 'around' then
  local rank
  if desc then rank = redis.call('ZREVRANK', KEYS[1], ARGV[3])
  else rank = redis.call('ZRANK', KEYS[1], ARGV[3]) end
  if not rank then return {t[1], t[2], L, -1} end
  local n = tonumber(ARGV[4])
  first = rank - n
  if first < 0 then first = 0 end
  last = rank + n
else
  first, last = tonumber(ARGV[3]), tonumber(ARGV[4])
end
local items
if desc then items = redis.call('ZREVRANGE', KEYS[1], first, last, 'WITHSCORES')
else items = redis.call('ZRANGE', KEYS[1], first, last, 'WITHSCORES') end
local out = {t[1], t[2], L, first}
for i = 1, #items do out[#out + 1] = items[i] end
return out
