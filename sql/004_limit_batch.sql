-- preflight migration 004: preflight_limit_batch, one call doing up to three limiter writes (used by the Postgres
-- limit stores when write batching is on: clients::pg_limit_batch, docs/postgres.md).
--
-- A preflight's stateful phase starts its fixed-window consume, its token-bucket acquire and its admission
-- reservation together. Sent as three statements they wake three server backends and commit three transactions;
-- this function does the three in one statement and one commit. Each part is optional (its key NULL: skipped, its
-- outputs NULL) and independent of the others: a part that is denied does not stop another one, exactly as three
-- separate statements. The parts' semantics are those of the standalone statements:
--   * window (p_fw_*): clients::pg_fixed_window_store's consume upsert (a blocked attempt writes nothing);
--     outputs allowed, the count of the current window (after the call when allowed), seconds until it ends;
--   * bucket (p_rl_*): clients::pg_rate_limit_store's GCRA acquire upsert (T, tau in microseconds; a denied acquire
--     writes nothing); outputs allowed, the TAT after the call (NULL for an unknown key that was denied), the
--     server's now in microseconds;
--   * admission (p_adm_*): a call of preflight_admit (003); outputs the new lease id (NULL when full) and the live
--     leases of the key after the call.
-- Every part runs with a fresh snapshot (separate statements of a VOLATILE function), so each re-reads what
-- committed before its lock was granted, as the standalone statements do.
--
-- Locks: the parts take their locks in a fixed order (window row, bucket row, admission lock) and hold them until
-- the call commits. Every caller takes at most one lock of each kind in that order, so concurrent calls cannot
-- deadlock (a standalone statement holds one lock only). An error in one part (e.g. a count overflowing bigint)
-- rolls back the whole call: every part fails together.
CREATE OR REPLACE FUNCTION preflight_limit_batch(
    p_fw_key text, p_fw_max bigint, p_fw_period bigint, p_fw_n bigint,
    p_rl_key text, p_rl_t float8, p_rl_tau float8, p_rl_q float8,
    p_adm_key text, p_adm_max integer, p_adm_ttl_ms bigint,
    OUT fw_allowed boolean, OUT fw_count bigint, OUT fw_reset_s float8,
    OUT rl_allowed boolean, OUT rl_tat float8, OUT rl_now float8,
    OUT adm_lease_id uuid, OUT adm_in_use integer
)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    now_s float8;
    ws bigint;
    cost float8;
BEGIN
    IF p_fw_key IS NOT NULL THEN
        now_s := extract(epoch FROM clock_timestamp());
        ws := floor(now_s / p_fw_period)::bigint * p_fw_period;
        -- The common case first: the key's row exists and the attempt fits (a plain UPDATE, cheaper than the upsert's
        -- speculative insertion). It re-checks its WHERE on the newest row version, so a success is exact. Anything
        -- else (no row yet, a full window) falls through to the standalone statement's upsert, which decides.
        UPDATE preflight_windows AS f SET
            count = CASE WHEN f.window_start = ws AND f.period_s = p_fw_period THEN f.count + p_fw_n ELSE p_fw_n END,
            window_start = ws, period_s = p_fw_period, idle_after = ws + 2 * p_fw_period
        WHERE f.key = p_fw_key
          AND CASE WHEN f.window_start = ws AND f.period_s = p_fw_period THEN f.count + p_fw_n ELSE p_fw_n END
              <= p_fw_max
        RETURNING f.count INTO fw_count;
        IF fw_count IS NULL AND p_fw_n <= p_fw_max THEN
            INSERT INTO preflight_windows AS f (key, window_start, period_s, count, idle_after)
            VALUES (p_fw_key, ws, p_fw_period, p_fw_n, ws + 2 * p_fw_period)
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s
                        THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END,
                window_start = EXCLUDED.window_start, period_s = EXCLUDED.period_s, idle_after = EXCLUDED.idle_after
            WHERE CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s
                  THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END <= p_fw_max
            RETURNING f.count INTO fw_count;
        END IF;
        fw_allowed := fw_count IS NOT NULL;
        IF NOT fw_allowed THEN
            SELECT f.count INTO fw_count FROM preflight_windows AS f
            WHERE f.key = p_fw_key AND f.window_start = ws AND f.period_s = p_fw_period;
            fw_count := coalesce(fw_count, 0);
        END IF;
        fw_reset_s := ws + p_fw_period - now_s;
    END IF;

    IF p_rl_key IS NOT NULL THEN
        rl_now := extract(epoch FROM clock_timestamp()) * 1e6;
        cost := p_rl_q * p_rl_t;
        -- As for the window: the UPDATE of an existing row first, the standalone upsert when it matched nothing.
        UPDATE preflight_rate_limits AS r SET tat = greatest(r.tat + cost, rl_now + cost)
        WHERE r.key = p_rl_key AND greatest(r.tat + cost, rl_now + cost) <= rl_now + p_rl_tau
        RETURNING r.tat INTO rl_tat;
        IF rl_tat IS NULL AND cost <= p_rl_tau THEN
            INSERT INTO preflight_rate_limits AS r (key, tat) VALUES (p_rl_key, rl_now + cost)
            ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat + cost, EXCLUDED.tat)
            WHERE greatest(r.tat + cost, EXCLUDED.tat) <= EXCLUDED.tat - cost + p_rl_tau
            RETURNING r.tat INTO rl_tat;
        END IF;
        rl_allowed := rl_tat IS NOT NULL;
        IF NOT rl_allowed THEN
            SELECT r.tat INTO rl_tat FROM preflight_rate_limits AS r WHERE r.key = p_rl_key;
        END IF;
    END IF;

    IF p_adm_key IS NOT NULL THEN
        -- preflight_admit itself (003): the same lock and count as a standalone reservation, never a copy of them
        -- (measured as cheap as an inlined copy).
        SELECT a.o_lease_id, a.o_in_use INTO adm_lease_id, adm_in_use
        FROM preflight_admit(p_adm_key, p_adm_max, p_adm_ttl_ms) AS a;
    END IF;
END
$fn$;
