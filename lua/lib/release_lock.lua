-- lib/release_lock.lua: the release of a job's uniqueness lock.
-- Defines release_lock(lock, id): deletes the lock at key `lock` only while it still holds job
--   `id` (once it expired, another job may hold it).
-- Expects nothing.
local function release_lock(lock, id)
  if redis.call('GET', lock) == id then
    redis.call('DEL', lock)
  end
end
