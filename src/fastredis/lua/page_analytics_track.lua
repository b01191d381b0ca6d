-- page_analytics_track: record page views: the total count, the all-time
-- unique users, and the users active in each time bucket, in one step.
--
-- KEYS[1]: the total view counter (string integer)
-- KEYS[2]: the all-time unique users HyperLogLog
-- KEYS[3]: the once-key of this call; if it exists the call already ran (a
--          retry after a lost reply) and nothing is applied
-- KEYS[4..3+m]: activity bucket HyperLogLog keys (bucket i covers epoch
--          seconds [i*width, (i+1)*width)), including the server-time candidates
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: activity bucket lifetime in seconds after the bucket ends (integer)
-- ARGV[3]: once-key lifetime in seconds (integer)
-- ARGV[4..3+m]: the bucket index of each bucket key
-- ARGV[4+m..]: event pairs: time in epoch seconds ('' = server TIME), user id
-- Returns: the total view count after the call
-- idempotent: yes
local width = tonumber(ARGV[1])
local m = #KEYS - 3
local byidx = {}
for j = 1, m do byidx[tonumber(ARGV[3 + j])] = j end
if redis.call('SET', KEYS[3], '1', 'EX', ARGV[3], 'NX') == false then
  return tonumber(redis.call('GET', KEYS[1]) or '0')
end
local now = nil
local users, per = {}, {}
for i = 4 + m, #ARGV, 2 do
  local t
  if ARGV[i] == '' then
    if not now then
      local tm = redis.call('TIME')
      now = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
    end
    t = now
  else
    t = tonumber(ARGV[i])
  end
  local j = byidx[math.floor(t / width)]
  if not j then
    redis.call('DEL', KEYS[3])
    return redis.error_reply('ERR clock skew: the server time is outside the candidate buckets; pass at=')
  end
  if not per[j] then per[j] = {} end
  local p = per[j]
  p[#p + 1] = ARGV[i + 1]
  users[#users + 1] = ARGV[i + 1]
end
local CHUNK = 4000
local function pfadd(key, list)
  for i = 1, #list, CHUNK do
    redis.call('PFADD', key, unpack(list, i, math.min(i + CHUNK - 1, #list)))
  end
end
for j, list in pairs(per) do
  local key = KEYS[3 + j]
  pfadd(key, list)
  redis.call('EXPIREAT', key, (tonumber(ARGV[3 + j]) + 1) * width + tonumber(ARGV[2]))
end
pfadd(KEYS[2], users)
return redis.call('INCRBY', KEYS[1], #users)
