-- counter_series_incr: add n to the counter of one time bucket and make the
-- bucket expire `retention` seconds after it ends.
--
-- KEYS[1]: the once-key of this call; if it exists the call already ran (a
--          retry after a lost reply) and nothing is applied
-- KEYS[2..1+m]: candidate bucket counter keys (bucket i covers epoch seconds
--          [i*width, (i+1)*width))
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: retention in seconds (integer)
-- ARGV[3]: once-key lifetime in seconds (integer)
-- ARGV[4]: n, the integer to add
-- ARGV[5]: event time in epoch seconds, or '' for the server's TIME
-- ARGV[6..5+m]: the bucket index of each bucket key
-- Returns: {bucket index, the bucket's count after the call}
-- idempotent: yes
local width = tonumber(ARGV[1])
local t
if ARGV[5] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) + tonumber(now[2]) / 1000000
else
  t = tonumber(ARGV[5])
end
local idx = math.floor(t / width)
local key = nil
for j = 2, #KEYS do
  if tonumber(ARGV[4 + j]) == idx then key = KEYS[j] end
end
if not key then
  return redis.error_reply('ERR clock skew: the server time is outside the candidate buckets; pass at=')
end
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[3], 'NX') == false then
  return {idx, tonumber(redis.call('GET', key) or '0')}
end
local v = redis.call('INCRBY', key, ARGV[4])
redis.call('EXPIREAT', key, (idx + 1) * width + tonumber(ARGV[2]))
return {idx, v}
