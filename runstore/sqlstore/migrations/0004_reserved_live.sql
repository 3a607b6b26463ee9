-- 0004: reserved. Another branch adds the real migration 0004; branch live
-- (named leases, 0005) holds the number with this no-op so that versions
-- stay contiguous. When merging, keep the other branch's 0004 and delete
-- this file.
SELECT 1;
