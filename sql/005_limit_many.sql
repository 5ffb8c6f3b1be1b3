-- preflight migration 005: preflight_limit_many, the limiter writes of several preflights in one call (used by
-- clients::pg_limit_batch when writes of more than one preflight wait for the same call; docs/postgres.md).
--
-- preflight_limit_batch (004) does one preflight's window consume, bucket acquire and admission reservation in one
-- call. Under load many preflights reach their stateful phase while earlier calls are still in flight; this function
-- takes the writes of all of them as arrays, one array per parameter of each kind (the i-th elements of a kind's
-- arrays are one write), and answers one row per index i with preflight_limit_batch's eight columns: row i holds
-- the outcome of the i-th window, bucket and admission write (NULL for a kind with fewer writes). The arrays of one
-- kind have one length; a kind may be empty. Each write has the semantics of its standalone statement, as in 004.
--
-- Where the saving comes from: each SQL statement of a plpgsql function pays its executor start-up, and each call its
-- protocol round, transaction and commit. Here each kind is one set-based statement for all of its writes: 004's
-- upsert over unnest(...). Only a write that was denied goes again, one by one, through preflight_limit_batch itself
-- (for its answer: the count or the TAT; never a copy of its logic). No sort, hash or aggregate over the arrays: the
-- server would allocate and free their memory at every call, which measured costlier than the writes.
--
-- Keys: within a kind, distinct and in ascending order (bytewise; pg_limit_batch sorts them). A duplicate window or
-- bucket key fails the call (ON CONFLICT cannot affect a row twice, 21000); a duplicate admission key is rejected
-- with 22023 (it would be counted once and could over-admit).
--
-- Locks: the window rows in array order (each locked or created by the upsert, also when the write does not fit:
-- ON CONFLICT locks the row before its WHERE; a write of more than its max touches no row, as in 004), then the
-- bucket rows likewise, then the admission locks in array order. As every caller sends keys in one order, calls
-- take their locks in one global order and cannot wait for each other in a cycle (nor with calls of 004 or the
-- standalone statements, which hold one lock of each kind, in the same kind order). (Advisory locks are keyed by a
-- 64-bit hash of the key: a cycle would need two keys' hashes to collide in opposite orders.) Every part runs with a
-- fresh snapshot (separate statements of a VOLATILE function), so each re-reads what committed before its locks
-- were granted, as the standalone statements do. An error in any write rolls back the whole call (the client then
-- retries each write alone, so a bad write fails by itself).
--
-- plan_cache_mode: the statements below take arrays whose length the planner cannot know; with the default (auto)
-- it re-plans them at every call (custom plans estimated cheaper), which cost more than the writes themselves.
CREATE OR REPLACE FUNCTION preflight_limit_many(
    p_fw_key text[], p_fw_max bigint[], p_fw_period bigint[], p_fw_n bigint[],
    p_rl_key text[], p_rl_t float8[], p_rl_tau float8[], p_rl_q float8[],
    p_adm_key text[], p_adm_max integer[], p_adm_ttl_ms bigint[]
)
RETURNS TABLE (
    fw_allowed boolean, fw_count bigint, fw_reset_s float8,
    rl_allowed boolean, rl_tat float8, rl_now float8,
    adm_lease_id uuid, adm_in_use integer
)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    n_fw integer := coalesce(cardinality(p_fw_key), 0);
    n_rl integer := coalesce(cardinality(p_rl_key), 0);
    n_adm integer := coalesce(cardinality(p_adm_key), 0);
    now_s float8;
    now_us float8;
    t timestamptz;
    i integer;
    r record;
    one record;
    fa boolean[]; fc bigint[]; fr float8[];
    ra boolean[]; rt float8[]; rn float8[]; rc float8[];
    live integer[];
    total integer[];
    ids uuid[];
BEGIN
    -- No aggregate, sort or join over the arrays below: results go into arrays by their index, in loops over the
    -- statements' RETURNING rows (each sort or hash would allocate and free its own memory at every call).
    IF n_fw > 0 THEN
        now_s := extract(epoch FROM clock_timestamp());
        fa := array_fill(false, ARRAY[n_fw]);
        -- 004's upsert for every write at once, in array (key) order: each row is locked (or created) in that order, also
        -- when a row does not fit (ON CONFLICT locks it before its WHERE). The row's own write comes from the arrays
        -- by the row's key (distinct within the kind). A write of more than its max never touches a row (as in 004).
        FOR r IN
            INSERT INTO preflight_windows AS f (key, window_start, period_s, count, idle_after)
            SELECT x.key, x.ws, x.period, x.n, x.ws + 2 * x.period
            FROM (
                SELECT u.key, u.period, u.n, u.mx, floor(now_s / u.period)::bigint * u.period AS ws
                FROM unnest(p_fw_key, p_fw_max, p_fw_period, p_fw_n) AS u(key, mx, period, n)
            ) AS x
            WHERE x.n <= x.mx
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s
                        THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END,
                window_start = EXCLUDED.window_start, period_s = EXCLUDED.period_s, idle_after = EXCLUDED.idle_after
            WHERE CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s
                  THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END
                  <= p_fw_max[array_position(p_fw_key, f.key)]
            RETURNING array_position(p_fw_key, f.key) AS o, f.count, f.window_start + f.period_s - now_s AS reset_s
        LOOP
            fa[r.o] := true; fc[r.o] := r.count; fr[r.o] := r.reset_s;
        END LOOP;
        -- The denied ones through 004 itself, for its answer (count, reset): each row they touch is locked already
        -- or is left alone (a write of more than its max), so no lock is taken out of order.
        IF NOT (true = ALL (fa)) THEN
            FOR i IN 1 .. n_fw LOOP
                CONTINUE WHEN fa[i];
                SELECT * INTO one FROM preflight_limit_batch(p_fw_key[i], p_fw_max[i], p_fw_period[i], p_fw_n[i],
                                                           NULL, 0, 0, 0, NULL, 0, 0);
                fa[i] := one.fw_allowed; fc[i] := one.fw_count; fr[i] := one.fw_reset_s;
            END LOOP;
        END IF;
    END IF;

    IF n_rl > 0 THEN
        now_us := extract(epoch FROM clock_timestamp()) * 1e6;
        ra := array_fill(false, ARRAY[n_rl]);
        rn := array_fill(now_us, ARRAY[n_rl]);
        rc := array_fill(0::float8, ARRAY[n_rl]);
        FOR i IN 1 .. n_rl LOOP
            rc[i] := p_rl_q[i] * p_rl_t[i];  -- 004's cost
        END LOOP;
        -- As for the windows: 004's upsert for every write, in array (key) order. A write whose cost exceeds tau never
        -- touches a row (as in 004).
        FOR r IN
            INSERT INTO preflight_rate_limits AS b (key, tat)
            SELECT x.key, now_us + x.cost
            FROM unnest(p_rl_key, rc, p_rl_tau) AS x(key, cost, tau)
            WHERE x.cost <= x.tau
            ON CONFLICT (key) DO UPDATE
            SET tat = greatest(b.tat + rc[array_position(p_rl_key, b.key)], EXCLUDED.tat)
            WHERE greatest(b.tat + rc[array_position(p_rl_key, b.key)], EXCLUDED.tat)
                  <= EXCLUDED.tat - rc[array_position(p_rl_key, b.key)] + p_rl_tau[array_position(p_rl_key, b.key)]
            RETURNING array_position(p_rl_key, b.key) AS o, b.tat
        LOOP
            ra[r.o] := true; rt[r.o] := r.tat;
        END LOOP;
        IF NOT (true = ALL (ra)) THEN
            FOR i IN 1 .. n_rl LOOP
                CONTINUE WHEN ra[i];
                SELECT * INTO one FROM preflight_limit_batch(NULL, 0, 1, 0, p_rl_key[i], p_rl_t[i], p_rl_tau[i],
                                                           p_rl_q[i], NULL, 0, 0);
                ra[i] := one.rl_allowed; rt[i] := one.rl_tat; rn[i] := one.rl_now;
            END LOOP;
        END IF;
    END IF;

    IF n_adm > 0 THEN
        -- 003's lock for every key, in array order; then, with a fresh snapshot, 003's count for each.
        IF n_adm = 1 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(p_adm_key[1], 7411));
        ELSE
            IF EXISTS (SELECT 1 FROM unnest(p_adm_key) WITH ORDINALITY AS a(key, o) WHERE a.key = p_adm_key[a.o + 1])
            THEN
                RAISE EXCEPTION 'preflight_limit_many: an admission key appears twice' USING ERRCODE = '22023';
            END IF;
            PERFORM pg_advisory_xact_lock(hashtextextended(a, 7411)) FROM unnest(p_adm_key) AS a;
        END IF;
        t := clock_timestamp();
        live := array_fill(0, ARRAY[n_adm]);
        total := live;
        FOR r IN
            SELECT x.o, c.live, c.total
            FROM unnest(p_adm_key) WITH ORDINALITY AS x(key, o)
            CROSS JOIN LATERAL (
                SELECT (count(*) FILTER (WHERE l.expires_at > t))::integer AS live, count(*)::integer AS total
                FROM preflight_leases AS l WHERE l.key = x.key
            ) AS c
        LOOP
            live[r.o] := r.live; total[r.o] := r.total;
        END LOOP;
        ids := array_fill(NULL::uuid, ARRAY[n_adm]);
        FOR i IN 1 .. n_adm LOOP
            IF total[i] > live[i] THEN
                DELETE FROM preflight_leases AS l WHERE l.key = p_adm_key[i] AND l.expires_at <= t;
            END IF;
            IF live[i] < p_adm_max[i] THEN
                ids[i] := gen_random_uuid();
                live[i] := live[i] + 1;
            END IF;
        END LOOP;
        INSERT INTO preflight_leases (lease_id, key, expires_at)
        SELECT u.id, u.key, t + u.ttl * interval '1 millisecond'
        FROM unnest(ids, p_adm_key, p_adm_ttl_ms) AS u(id, key, ttl)
        WHERE u.id IS NOT NULL;
    END IF;

    FOR i IN 1 .. greatest(n_fw, n_rl, n_adm) LOOP
        fw_allowed := fa[i]; fw_count := fc[i]; fw_reset_s := fr[i];
        rl_allowed := ra[i]; rl_tat := rt[i]; rl_now := rn[i];
        adm_lease_id := ids[i]; adm_in_use := live[i];
        RETURN NEXT;
    END LOOP;
END
$fn$;
