-- unique_counter_count: the union count (PFCOUNT k1 k2 ...) of the buckets
-- whose index lies in [lo, hi]; a missing bound is the server's current bucket.
--
-- KEYS[1..m]: bucket HyperLogLog keys, a superset of the wanted buckets
-- ARGV[1]: bucket width in seconds (integer)
-- ARGV[2]: lo, the first bucket index, or '' for the server's current bucket
-- ARGV[3]: hi, the last bucket index, or '' for the server's current bucket
-- ARGV[4..3+m]: the bucket index of each KEYS entry
-- Returns: the approximate number of distinct ids in the union (integer)
-- idempotent: yes
local width = tonumber(ARGV[1])
local cur = nil
if ARGV[2] == '' or ARGV[3] == '' then
  local now = redis.call('TIME')
  cur = math.floor((tonumber(now[1]) + tonumber(now[2]) / 1000000) / width)
end
local lo = tonumber(ARGV[2]) or cur
local hi = tonumber(ARGV[3]) or cur
local sel = {}
for j = 1, #KEYS do
  local i = tonumber(ARGV[3 + j])
  if i >= lo and i <= hi then sel[#sel + 1] = KEYS[j] end
end
if #sel == 0 then return 0 end
return redis.call('PFCOUNT', unpack(sel))
