-- page_analytics_track: record page views: the total count, the all-time
-- unique users, and the users active in each time bucket, in one step.
--
-- KEYS[1]: the total view counter (string integer)
-- KEYS[2]: the all-time unique users HyperLogLog
-- KEYS[3..2+m]: activity bucket HyperLogLog keys (bucket i covers epoch
--          seconds [i*width, (i+1)*width)), including the server-time candidates
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: activity bucket lifetime in seconds after the bucket ends (integer)
-- ARGV[3..2+m]: the bucket index of each bucket key
-- ARGV[3+m..]: event pairs: time in epoch seconds ('' = server TIME), user id
-- Returns: the total view count after the call
-- idempotent: no (a second run counts the views again)
local width = tonumber(ARGV[1])
local m = #KEYS - 2
local byidx = {}
for j = 1, m do byidx[tonumber(ARGV[2 + j])] = j end
local now = nil
local users, per = {}, {}
for i = 3 + m, #ARGV, 2 do
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
  local key = KEYS[2 + j]
  pfadd(key, list)
  redis.call('EXPIREAT', key, (tonumber(ARGV[2 + j]) + 1) * width + tonumber(ARGV[2]))
end
pfadd(KEYS[2], users)
return redis.call('INCRBY', KEYS[1], #users)
