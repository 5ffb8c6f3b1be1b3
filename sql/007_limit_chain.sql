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
-- copied: the one-chain function calls 004 for each part, and the many-chains function calls 005 once per kind (its
-- set-based statements) with the parts of the chains still running.
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
    stop boolean := false;
BEGIN
    IF p_fw_key IS NOT NULL THEN
        SELECT * INTO one FROM preflight_limit_batch(p_fw_key, p_fw_max, p_fw_period, p_fw_n,
                                                   NULL, 0, 0, 0, NULL, 0, 0);
        fw_allowed := one.fw_allowed; fw_count := one.fw_count; fw_reset_s := one.fw_reset_s;
        IF NOT fw_allowed THEN
            RETURN;  -- nothing was written
        END IF;
    END IF;
    IF p_rl_key IS NOT NULL THEN
        SELECT * INTO one FROM preflight_limit_batch(NULL, 0, 1, 0, p_rl_key, p_rl_t, p_rl_tau, p_rl_q,
                                                   NULL, 0, 0);
        rl_allowed := one.rl_allowed; rl_tat := one.rl_tat; rl_now := one.rl_now;
        stop := NOT rl_allowed;
    END IF;
    IF NOT stop AND p_adm_key IS NOT NULL THEN
        SELECT a.o_lease_id, a.o_in_use INTO adm_lease_id, adm_in_use
        FROM preflight_admit(p_adm_key, p_adm_max, p_adm_ttl_ms) AS a;
        stop := adm_lease_id IS NULL;
        IF stop AND p_rl_key IS NOT NULL THEN  -- the bucket's tokens back
            UPDATE preflight_rate_limits SET tat = tat - p_rl_q * p_rl_t WHERE key = p_rl_key
            RETURNING tat INTO rl_tat;
        END IF;
    END IF;
    IF stop AND p_fw_key IS NOT NULL THEN  -- the window's count back
        UPDATE preflight_windows SET count = greatest(count - p_fw_n, 0) WHERE key = p_fw_key
        RETURNING count INTO fw_count;
    END IF;
END
$fn$;

-- The chains of several preflights in one call (p_n chains, numbered 1..p_n). Per kind, one array per parameter
-- (the i-th elements of a kind's arrays are one part) plus p_*_chain, the chain each part belongs to; within a kind
-- the keys are distinct and in ascending order, and a chain has at most one part of each kind. Answers one row per
-- chain, in chain order. Each kind is one call of preflight_limit_many (005) with the parts of the chains still
-- running, in array order: the windows of every chain, then the buckets of the chains whose window passed, then the
-- admissions of the chains whose window and bucket passed; at the end each chain stopped by its bucket or its
-- admission gets its earlier parts back. An error in any part rolls back the whole call (the client then retries
-- each chain alone).
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
    stopped_at integer[] := array_fill(0, ARRAY[p_n]);  -- 0 running, 1 window, 2 bucket, 3 admission
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
    sel integer[];  -- a kind's parts of running chains, in array (key) order
    i integer;
    c integer;
    v bigint;
    f float8;
    r record;
BEGIN
    IF coalesce(cardinality(p_fw_key), 0) > 0 THEN
        i := 0;
        FOR r IN SELECT * FROM preflight_limit_many(p_fw_key, p_fw_max, p_fw_period, p_fw_n,
                                                   '{}', '{}', '{}', '{}', '{}', '{}', '{}') LOOP
            i := i + 1;
            c := p_fw_chain[i];
            fwi[c] := i;
            fa[c] := r.fw_allowed; fc[c] := r.fw_count; fr[c] := r.fw_reset_s;
            IF NOT r.fw_allowed THEN
                stopped_at[c] := 1;
            END IF;
        END LOOP;
    END IF;

    sel := ARRAY(SELECT a.o::integer FROM unnest(p_rl_chain) WITH ORDINALITY AS a(ch, o)
                 WHERE stopped_at[a.ch] = 0 ORDER BY a.o);
    IF cardinality(sel) > 0 THEN
        i := 0;
        FOR r IN SELECT * FROM preflight_limit_many('{}', '{}', '{}', '{}',
                ARRAY(SELECT p_rl_key[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                ARRAY(SELECT p_rl_t[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                ARRAY(SELECT p_rl_tau[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                ARRAY(SELECT p_rl_q[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                '{}', '{}', '{}') LOOP
            i := i + 1;
            c := p_rl_chain[sel[i]];
            rli[c] := sel[i];
            ra[c] := r.rl_allowed; rt[c] := r.rl_tat; rn[c] := r.rl_now;
            IF NOT r.rl_allowed THEN
                stopped_at[c] := 2;
            END IF;
        END LOOP;
    END IF;

    sel := ARRAY(SELECT a.o::integer FROM unnest(p_adm_chain) WITH ORDINALITY AS a(ch, o)
                 WHERE stopped_at[a.ch] = 0 ORDER BY a.o);
    IF cardinality(sel) > 0 THEN
        i := 0;
        FOR r IN SELECT * FROM preflight_limit_many('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
                ARRAY(SELECT p_adm_key[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                ARRAY(SELECT p_adm_max[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o),
                ARRAY(SELECT p_adm_ttl_ms[s.x] FROM unnest(sel) WITH ORDINALITY AS s(x, o) ORDER BY s.o)) LOOP
            i := i + 1;
            c := p_adm_chain[sel[i]];
            ids[c] := r.adm_lease_id; live[c] := r.adm_in_use;
            IF r.adm_lease_id IS NULL THEN
                stopped_at[c] := 3;
            END IF;
        END LOOP;
    END IF;

    -- The give-backs touch rows this call has locked already: no lock is taken here.
    FOR c IN 1 .. p_n LOOP
        i := rli[c];
        IF stopped_at[c] = 3 AND i > 0 THEN
            UPDATE preflight_rate_limits SET tat = tat - p_rl_q[i] * p_rl_t[i] WHERE key = p_rl_key[i]
            RETURNING tat INTO f;
            rt[c] := f;
        END IF;
        i := fwi[c];
        IF stopped_at[c] >= 2 AND i > 0 THEN
            UPDATE preflight_windows SET count = greatest(count - p_fw_n[i], 0) WHERE key = p_fw_key[i]
            RETURNING count INTO v;
            fc[c] := v;
        END IF;
    END LOOP;

    FOR c IN 1 .. p_n LOOP
        fw_allowed := fa[c]; fw_count := fc[c]; fw_reset_s := fr[c];
        rl_allowed := ra[c]; rl_tat := rt[c]; rl_now := rn[c];
        adm_lease_id := ids[c]; adm_in_use := live[c];
        RETURN NEXT;
    END LOOP;
END
$fn$;
