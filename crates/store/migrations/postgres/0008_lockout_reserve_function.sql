-- A lockout reservation in one round trip (crates/store/src/postgres.rs `lockout_reserve`):
-- locks the keys' counter rows in key order, creating fresh ones, then decides as
-- `common::lockout_reserve` does and takes a slot of every key only when every key allows it.
-- Returns one row per key, in the order given: `lock_end` when the key is locked, `busy` when
-- every slot of its window is taken by failures and attempts in flight. (The result columns are
-- named apart from the table's, which PL/pgSQL would otherwise find ambiguous.) Tested against the Rust rules in
-- crates/store/src/pg_reserve_tests.rs. The policy arrives clamped (at least 1 and 1 ms).
CREATE FUNCTION lockout_reserve(keys text[], max_failures int8[], window_ms int8[], now_ms int8)
RETURNS TABLE (reserved_key text, lock_end int8, busy boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Lock in key order (as every lockout statement does, so two calls cannot deadlock); a fresh
    -- row reads exactly like no row. `DO UPDATE` of nothing locks an existing row.
    INSERT INTO lockouts AS l (lock_key, window_start, failures, locked_until, expires_at)
    SELECT k, now_ms, 0, NULL, now_ms + w FROM unnest(keys, window_ms) AS t(k, w) ORDER BY k
    ON CONFLICT (lock_key) DO UPDATE SET lock_key = excluded.lock_key;

    -- The rows are this transaction's now; this statement reads them as locked.
    RETURN QUERY
    WITH wanted AS (
        SELECT t.k, t.mx, t.win, t.ord
        FROM unnest(keys, max_failures, window_ms) WITH ORDINALITY AS t(k, mx, win, ord)
    ), stored AS (
        SELECT w.k, w.mx, w.win, w.ord,
               coalesce(c.locked_until > now_ms, false) AS locked,
               c.locked_until AS until,
               now_ms >= c.window_start + w.win OR coalesce(c.locked_until <= now_ms, false)
                   AS fresh,
               c.window_start, c.failures
        FROM wanted w JOIN lockouts c ON c.lock_key = w.k
    ), next AS (
        SELECT s.k, s.mx, s.win, s.ord, s.locked, s.until,
               CASE WHEN s.fresh THEN now_ms ELSE s.window_start END AS start,
               CASE WHEN s.fresh THEN 0 ELSE s.failures END AS taken
        FROM stored s
    ), taken AS (
        UPDATE lockouts c
        SET window_start = n.start, failures = n.taken + 1, locked_until = NULL,
            expires_at = n.start + n.win
        FROM next n
        WHERE c.lock_key = n.k
          AND NOT EXISTS (SELECT 1 FROM next r WHERE r.locked OR r.taken >= r.mx)
        RETURNING c.lock_key
    )
    SELECT n.k, CASE WHEN n.locked THEN n.until END, NOT n.locked AND n.taken >= n.mx
    FROM next n
    ORDER BY n.ord;
END
$$;
