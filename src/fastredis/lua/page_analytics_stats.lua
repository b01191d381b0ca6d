-- page_analytics_stats: total views, all-time unique users, and the distinct
-- users active in the last window (the union of the covering buckets, never
-- a sum), read atomically.
--
-- KEYS[1]: the total view counter
-- KEYS[2]: the all-time unique users HyperLogLog
-- KEYS[3..]: activity bucket keys, a superset of the buckets of the window
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: active window in seconds
-- ARGV[3]: now in epoch seconds, or '' for the server's TIME
-- ARGV[4..]: the bucket index of each bucket key
-- Returns: {total, unique, active} (integers)
-- idempotent: yes
local width, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local sel = {}
for j = 3, #KEYS do
  local i = tonumber(ARGV[1 + j])
  -- bucket [i*width, (i+1)*width) overlaps (now - window, now]
  if (i + 1) * width > now - window and i * width <= now then sel[#sel + 1] = KEYS[j] end
end
local active = 0
if #sel > 0 then active = redis.call('PFCOUNT', unpack(sel)) end
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PFCOUNT', KEYS[2]), active}
