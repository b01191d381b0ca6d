-- unique_counter_add: PFADD ids into the HyperLogLog of one time bucket.
--
-- Bucket i covers epoch seconds [i*width, (i+1)*width). The client builds the
-- keys; without ARGV[2] the bucket is picked among the candidate KEYS by the
-- server's TIME (the client passes its own bucket and both neighbours).
--
-- KEYS[1..m]: candidate bucket HyperLogLog keys
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: event time in epoch seconds, or '' for the server's TIME
-- ARGV[3..2+m]: the bucket index of each KEYS entry
-- ARGV[3+m..]: the ids to add
-- Returns: {bucket index used, 1 if the HyperLogLog changed else 0}
-- idempotent: yes
local width = tonumber(ARGV[1])
local t
if ARGV[2] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) + tonumber(now[2]) / 1000000
else
  t = tonumber(ARGV[2])
end
local idx = math.floor(t / width)
local m = #KEYS
local key = nil
for j = 1, m do
  if tonumber(ARGV[2 + j]) == idx then key = KEYS[j] end
end
if not key then
  return redis.error_reply('ERR clock skew: the server time is outside the candidate buckets; pass at=')
end
local changed = 0
local first = 3 + m
local CHUNK = 4000
for i = first, #ARGV, CHUNK do
  local last = math.min(i + CHUNK - 1, #ARGV)
  changed = math.max(changed, redis.call('PFADD', key, unpack(ARGV, i, last)))
end
return {idx, changed}
