-- preflight migration 001: shared state of the limiters (token bucket / GCRA, fixed windows, admission leases).
-- Every time is taken from the server clock (clock_timestamp()) by the statements, never from clients.

-- GCRA state: one row per bucket key. tat = theoretical arrival time in microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS preflight_rate_limits (
    key text PRIMARY KEY,
    tat double precision NOT NULL
);

-- Fixed windows: one row per key, holding the current (or last) window only.
-- window_start and idle_after are seconds since the Unix epoch; idle_after = window end + one period.
CREATE TABLE IF NOT EXISTS preflight_windows (
    key text PRIMARY KEY,
    window_start bigint NOT NULL,
    period_s bigint NOT NULL,
    count bigint NOT NULL,
    idle_after bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS preflight_windows_idle_after ON preflight_windows (idle_after);

-- Admission leases: one row per lease; a lease is live while expires_at > clock_timestamp().
CREATE TABLE IF NOT EXISTS preflight_leases (
    lease_id uuid PRIMARY KEY,
    key text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS preflight_leases_key ON preflight_leases (key, expires_at);

-- Takes one slot of p_key when fewer than p_max live leases exist. A per-key transaction-scoped advisory
-- lock serialises reservations of one key across every process; as a VOLATILE plpgsql function each
-- statement below takes a fresh snapshot after the lock is held, so the count sees every committed lease
-- (a single CTE would count with a snapshot taken before the lock and could over-admit).
CREATE OR REPLACE FUNCTION preflight_reserve(p_key text, p_max integer, p_ttl_ms bigint)
RETURNS TABLE (o_lease_id uuid, o_in_use integer)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n integer;
    id uuid;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 7411));
    DELETE FROM preflight_leases AS l WHERE l.key = p_key AND l.expires_at <= clock_timestamp();
    SELECT count(*) INTO n FROM preflight_leases AS l WHERE l.key = p_key;
    IF n < p_max THEN
        id := gen_random_uuid();
        INSERT INTO preflight_leases VALUES (id, p_key, clock_timestamp() + p_ttl_ms * interval '1 millisecond');
        n := n + 1;
    END IF;
    RETURN QUERY SELECT id, n;
END
$fn$;
