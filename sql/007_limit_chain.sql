-- preflight migration 007: preflight_limit_chain and preflight_limit_chains, a preflight's stateful writes as ONE
-- call that applies them in precedence order and stops at the first denial (used by clients::pg_limit_chain, the
-- default pipeline's stateful phase on Postgres; DESIGN.md "Decisions on the Postgres path", docs/postgres.md).
--
-- preflight_limit_batch (004) and preflight_limit_many (005) apply their parts independently: sent together for one
-- preflight, a rate-limited request still wrote its admission lease (undone by a second call), so a concurrent
-- request could see the slot taken and be refused. A chain instead:
--   * applies its parts in the order window (the backstop), bucket (the rate limit), admission (always last);
--   * stops at the first denial: the later parts are never attempted (their outputs NULL, nothing of theirs written,
--     no lock of theirs taken);
--   * gives the earlier parts back in the same transaction (window count - n, bucket TAT - cost): their rows are
--     locked by this call until it commits, so no other caller ever sees the transient consume. After the give-back
--     the state is that of a sequential evaluation with refunds: the TAT returns to max(TAT before, now), which no
--     later decision can tell from the TAT before.
-- Each part's own semantics (what is allowed, what a denial answers) are those of 004's part, whose logic is not
-- copied: the one-chain function calls 004 for each part, and the many-chains function uses 005's set-based
-- statements.
--
-- Outputs (one row per chain, the columns of 004): a part not asked or not attempted has NULL in all its columns;
-- a part given back keeps allowed = true and reports the state after the give-back.
--
-- Locks: the window rows, then the bucket rows, then the admission locks, each kind in ascending key order (the
-- client sorts), exactly as 004 and 005: calls of all three functions and the standalone statements take their
-- locks in one global order and cannot deadlock. A give-back touches only rows this call has locked already.
CREATE OR REPLACE FUNCTION preflight_limit_chain(
    p_fw_key text, p_fw_max bigint, p_fw_period bigint, p_fw_n bigint,
    p_rl_key text, p_rl_t float8, p_rl_tau float8, p_rl_q float8,
    p_adm_key text, p_adm_max integer, p_adm_ttl_ms bigint,
    OUT fw_allowed boolean, OUT fw_count bigint, OUT fw_reset_s float8,
    OUT rl_allowed boolean, OUT rl_tat float8, OUT rl_now float8,
    OUT adm_lease_id uuid, OUT adm_in_use integer
)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    one record;
BEGIN
    IF p_fw_key IS NOT NULL THEN
        SELECT * INTO one FROM preflight_limit_batch(p_fw_key, p_fw_max, p_fw_period, p_fw_n,
                                                   NULL, 0, 0, 0, NULL, 0, 0);
        fw_allowed := one.fw_allowed; fw_count := one.fw_count; fw_reset_s := one.fw_reset_s;
        IF NOT fw_allowed THEN
            RETURN;
        END IF;
    END IF;
    IF p_rl_key IS NOT NULL THEN
        SELECT * INTO one FROM preflight_limit_batch(NULL, 0, 1, 0, p_rl_key, p_rl_t, p_rl_tau, p_rl_q,
                                                   NULL, 0, 0);
        rl_allowed := one.rl_allowed; rl_tat := one.rl_tat; rl_now := one.rl_now;
        IF NOT rl_allowed THEN
            IF p_fw_key IS NOT NULL THEN
                UPDATE preflight_windows SET count = greatest(count - p_fw_n, 0) WHERE key = p_fw_key
                RETURNING count INTO fw_count;
            END IF;
            RETURN;
        END IF;
    END IF;
    IF p_adm_key IS NOT NULL THEN
        SELECT a.o_lease_id, a.o_in_use INTO adm_lease_id, adm_in_use
        FROM preflight_admit(p_adm_key, p_adm_max, p_adm_ttl_ms) AS a;
        IF adm_lease_id IS NULL THEN
            IF p_rl_key IS NOT NULL THEN
                UPDATE preflight_rate_limits SET tat = tat - p_rl_q * p_rl_t WHERE key = p_rl_key
                RETURNING tat INTO rl_tat;
            END IF;
            IF p_fw_key IS NOT NULL THEN
                UPDATE preflight_windows SET count = greatest(count - p_fw_n, 0) WHERE key = p_fw_key
                RETURNING count INTO fw_count;
            END IF;
        END IF;
    END IF;
END
$fn$;

-- The chains of several preflights in one call (p_n chains, numbered 1..p_n). Per kind, one array per parameter
-- (the i-th elements of a kind's arrays are one part) plus p_*_chain, the chain each part belongs to; within a kind
-- the keys are distinct and in ascending order, and a chain has at most one part of each kind. Answers one row per
-- chain, in chain order. Each kind is one set-based statement over the parts of the chains still running (005's
-- statements, filtered): the windows of every chain, then the buckets of the chains whose window passed, then the
-- admissions of the chains whose window and bucket passed; a denial marks its chain stopped and gives its earlier
-- parts back. An error in any part rolls back the whole call (the client then retries each chain alone).
CREATE OR REPLACE FUNCTION preflight_limit_chains(
    p_n integer,
    p_fw_key text[], p_fw_max bigint[], p_fw_period bigint[], p_fw_n bigint[], p_fw_chain integer[],
    p_rl_key text[], p_rl_t float8[], p_rl_tau float8[], p_rl_q float8[], p_rl_chain integer[],
    p_adm_key text[], p_adm_max integer[], p_adm_ttl_ms bigint[], p_adm_chain integer[]
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
    stopped boolean[] := array_fill(false, ARRAY[p_n]);
    fwi integer[] := array_fill(0, ARRAY[p_n]);  -- the chain's window part (0: none)
    rli integer[] := array_fill(0, ARRAY[p_n]);  -- the chain's bucket part (0: none)
    fa boolean[] := array_fill(NULL::boolean, ARRAY[p_n]);
    fc bigint[] := array_fill(NULL::bigint, ARRAY[p_n]);
    fr float8[] := array_fill(NULL::float8, ARRAY[p_n]);
    ra boolean[] := array_fill(NULL::boolean, ARRAY[p_n]);
    rt float8[] := array_fill(NULL::float8, ARRAY[p_n]);
    rn float8[] := array_fill(NULL::float8, ARRAY[p_n]);
    ids uuid[] := array_fill(NULL::uuid, ARRAY[p_n]);
    live integer[] := array_fill(NULL::integer, ARRAY[p_n]);
    rc float8[];
    now_s float8;
    now_us float8;
    ws bigint;
    t timestamptz;
    c integer;
    i integer;
    k integer;
    v bigint;
    f float8;
    r record;
    total integer[];
    alive integer[];  -- admission parts of running chains, in array (key) order
BEGIN
    IF n_fw > 0 THEN
        now_s := extract(epoch FROM clock_timestamp());
        FOR r IN
            INSERT INTO preflight_windows AS w (key, window_start, period_s, count, idle_after)
            SELECT x.key, x.ws, x.period, x.n, x.ws + 2 * x.period
            FROM (
                SELECT u.key, u.period, u.n, u.mx, floor(now_s / u.period)::bigint * u.period AS ws
                FROM unnest(p_fw_key, p_fw_max, p_fw_period, p_fw_n) AS u(key, mx, period, n)
            ) AS x
            WHERE x.n <= x.mx
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN w.window_start = EXCLUDED.window_start AND w.period_s = EXCLUDED.period_s
                        THEN w.count + EXCLUDED.count ELSE EXCLUDED.count END,
                window_start = EXCLUDED.window_start, period_s = EXCLUDED.period_s, idle_after = EXCLUDED.idle_after
            WHERE CASE WHEN w.window_start = EXCLUDED.window_start AND w.period_s = EXCLUDED.period_s
                  THEN w.count + EXCLUDED.count ELSE EXCLUDED.count END
                  <= p_fw_max[array_position(p_fw_key, w.key)]
            RETURNING array_position(p_fw_key, w.key) AS o, w.count, w.window_start + w.period_s - now_s AS reset_s
        LOOP
            c := p_fw_chain[r.o];
            fa[c] := true; fc[c] := r.count; fr[c] := r.reset_s;
        END LOOP;
        FOR i IN 1 .. n_fw LOOP
            c := p_fw_chain[i];
            fwi[c] := i;
            CONTINUE WHEN fa[c];
            -- Denied (its row, when it has one, is locked by the upsert above): the current window's count.
            ws := floor(now_s / p_fw_period[i])::bigint * p_fw_period[i];
            SELECT w.count INTO v FROM preflight_windows AS w
            WHERE w.key = p_fw_key[i] AND w.window_start = ws AND w.period_s = p_fw_period[i];
            fa[c] := false; fc[c] := coalesce(v, 0); fr[c] := ws + p_fw_period[i] - now_s;
            stopped[c] := true;
        END LOOP;
    END IF;

    IF n_rl > 0 THEN
        now_us := extract(epoch FROM clock_timestamp()) * 1e6;
        rc := array_fill(0::float8, ARRAY[n_rl]);
        FOR i IN 1 .. n_rl LOOP
            rc[i] := p_rl_q[i] * p_rl_t[i];  -- 004's cost
        END LOOP;
        FOR r IN
            INSERT INTO preflight_rate_limits AS b (key, tat)
            SELECT x.key, now_us + x.cost
            FROM unnest(p_rl_key, rc, p_rl_tau, p_rl_chain) AS x(key, cost, tau, ch)
            WHERE x.cost <= x.tau AND NOT stopped[x.ch]
            ON CONFLICT (key) DO UPDATE
            SET tat = greatest(b.tat + rc[array_position(p_rl_key, b.key)], EXCLUDED.tat)
            WHERE greatest(b.tat + rc[array_position(p_rl_key, b.key)], EXCLUDED.tat)
                  <= EXCLUDED.tat - rc[array_position(p_rl_key, b.key)] + p_rl_tau[array_position(p_rl_key, b.key)]
            RETURNING array_position(p_rl_key, b.key) AS o, b.tat
        LOOP
            c := p_rl_chain[r.o];
            ra[c] := true; rt[c] := r.tat; rn[c] := now_us;
        END LOOP;
        FOR i IN 1 .. n_rl LOOP
            c := p_rl_chain[i];
            rli[c] := i;
            CONTINUE WHEN stopped[c] OR ra[c];
            SELECT b.tat INTO f FROM preflight_rate_limits AS b WHERE b.key = p_rl_key[i];
            ra[c] := false; rt[c] := f; rn[c] := now_us;
            stopped[c] := true;
            k := fwi[c];
            IF k > 0 THEN
                UPDATE preflight_windows SET count = greatest(count - p_fw_n[k], 0) WHERE key = p_fw_key[k]
                RETURNING count INTO v;
                fc[c] := v;
            END IF;
        END LOOP;
    END IF;

    IF n_adm > 0 THEN
        alive := ARRAY(SELECT a.o::integer FROM unnest(p_adm_chain) WITH ORDINALITY AS a(ch, o)
                       WHERE NOT stopped[a.ch] ORDER BY a.o);
        IF cardinality(alive) > 0 THEN
            IF EXISTS (SELECT 1 FROM unnest(p_adm_key) WITH ORDINALITY AS a(key, o) WHERE a.key = p_adm_key[a.o + 1])
            THEN
                RAISE EXCEPTION 'preflight_limit_chains: an admission key appears twice' USING ERRCODE = '22023';
            END IF;
            -- 003's lock for every running chain's key, in array order; then, with a fresh snapshot, 003's count.
            PERFORM pg_advisory_xact_lock(hashtextextended(p_adm_key[a], 7411)) FROM unnest(alive) AS a;
            t := clock_timestamp();
            total := array_fill(0, ARRAY[n_adm]);
            FOR r IN
                SELECT x.o, q.live, q.total
                FROM unnest(alive) AS x(o)
                CROSS JOIN LATERAL (
                    SELECT (count(*) FILTER (WHERE l.expires_at > t))::integer AS live, count(*)::integer AS total
                    FROM preflight_leases AS l WHERE l.key = p_adm_key[x.o]
                ) AS q
            LOOP
                c := p_adm_chain[r.o];
                live[c] := r.live; total[r.o] := r.total;
            END LOOP;
            FOREACH i IN ARRAY alive LOOP
                c := p_adm_chain[i];
                IF total[i] > live[c] THEN
                    DELETE FROM preflight_leases AS l WHERE l.key = p_adm_key[i] AND l.expires_at <= t;
                END IF;
                IF live[c] < p_adm_max[i] THEN
                    ids[c] := gen_random_uuid();
                    live[c] := live[c] + 1;
                ELSE
                    -- Full: the chain's bucket and window are given back.
                    k := rli[c];
                    IF k > 0 THEN
                        UPDATE preflight_rate_limits SET tat = tat - rc[k] WHERE key = p_rl_key[k]
                        RETURNING tat INTO f;
                        rt[c] := f;
                    END IF;
                    k := fwi[c];
                    IF k > 0 THEN
                        UPDATE preflight_windows SET count = greatest(count - p_fw_n[k], 0) WHERE key = p_fw_key[k]
                        RETURNING count INTO v;
                        fc[c] := v;
                    END IF;
                END IF;
            END LOOP;
            INSERT INTO preflight_leases (lease_id, key, expires_at)
            SELECT ids[p_adm_chain[a]], p_adm_key[a], t + p_adm_ttl_ms[a] * interval '1 millisecond'
            FROM unnest(alive) AS a
            WHERE ids[p_adm_chain[a]] IS NOT NULL;
        END IF;
    END IF;

    FOR c IN 1 .. p_n LOOP
        fw_allowed := fa[c]; fw_count := fc[c]; fw_reset_s := fr[c];
        rl_allowed := ra[c]; rl_tat := rt[c]; rl_now := rn[c];
        adm_lease_id := ids[c]; adm_in_use := live[c];
        RETURN NEXT;
    END LOOP;
END
$fn$;
