-- Record a CompactMap's bucket layout once; every later opener reads the stored one.
-- KEYS[1]: the map's layout hash (fields v, n, b, e, s)
-- ARGV[1]: layout version (decimal string, "1")
-- ARGV[2]: n, items per integer bucket (integer >= 1)
-- ARGV[3]: b, number of buckets for str keys (integer >= 1)
-- ARGV[4]: e, the server's hash-max-listpack-entries when the layout was chosen (integer, informational)
-- ARGV[5]: s, the server's hash-max-listpack-value in bytes when the layout was chosen (integer, informational)
-- Returns: the stored layout as a flat array {field, value, ...}: the one just written when
--          KEYS[1] did not exist, else the one already there (ARGV ignored).
-- Units: counts of items and buckets; bytes for s.
-- Replay-safe: a second run finds the layout and returns it unchanged.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', ARGV[2], 'b', ARGV[3], 'e', ARGV[4], 's', ARGV[5])
end
return redis.call('HGETALL', KEYS[1])
