-- counter_series_incr: add n to the counter of one time bucket and make the
-- bucket expire `retention` seconds after it ends.
--
-- KEYS[1..m]: candidate bucket counter keys (bucket i covers epoch seconds
--          [i*width, (i+1)*width))
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: retention in seconds (integer)
-- ARGV[3]: n, the integer to add
-- ARGV[4]: event time in epoch seconds, or '' for the server's TIME
-- ARGV[5..4+m]: the bucket index of each bucket key
-- Returns: {bucket index, the bucket's count after the call}
-- idempotent: no (a second run adds n again)
local width = tonumber(ARGV[1])
local t
if ARGV[4] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) + tonumber(now[2]) / 1000000
else
  t = tonumber(ARGV[4])
end
local idx = math.floor(t / width)
local key = nil
for j = 1, #KEYS do
  if tonumber(ARGV[4 + j]) == idx then key = KEYS[j] end
end
if not key then
  return redis.error_reply('ERR clock skew: the server time is outside the candidate buckets; pass at=')
end
local v = redis.call('INCRBY', key, ARGV[3])
redis.call('EXPIREAT', key, (idx + 1) * width + tonumber(ARGV[2]))
return {idx, v}
