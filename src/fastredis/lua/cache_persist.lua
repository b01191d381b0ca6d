-- Make one cache entry live forever if it exists (Django's cache.touch(key, None)).
-- KEYS[1]: value key
-- ARGV: none
-- Returns: 1 if the key exists (now without expiry), 0 if it does not
-- PERSIST alone answers 0 for a key that exists without an expiry; this
-- script answers whether the key is there.
-- idempotent: yes
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
return 0
