-- preflight migration 003: a cheaper admission reservation, preflight_admit (used by clients::pg_admission_store
-- from this version on). preflight_reserve (001) stays for binaries of earlier versions; both take the same
-- per-key advisory lock, so a fleet mixing old and new binaries still never over-admits.
--
-- Same contract as preflight_reserve: takes one slot of p_key when fewer than p_max live leases exist
-- (live: expires_at > clock_timestamp()); returns the new lease id (NULL when full) and the live leases of the
-- key after the call. Called as a scalar, `SELECT preflight_admit($1, $2, $3)` (a composite "(lease_id,in_use)"),
-- which costs less than `SELECT * FROM preflight_admit(...)` (no function scan). What it does differently from
-- preflight_reserve, each measured cheaper (instructions per call under callgrind; docs/postgres.md):
--   * OUT parameters instead of RETURNS TABLE / RETURN QUERY: no result query, no tuplestore;
--   * the lock is taken by an assignment (a plpgsql "simple expression", evaluated without an SPI query)
--     instead of PERFORM;
--   * no DELETE before the count: one scan counts the live leases and all of them; expired leases of the key
--     are deleted only when there are some (rare: a holder that neither released nor renewed). So the rows of
--     a key in use stay bounded by p_max plus the leases that expired since its previous reservation. Keys that
--     are never reserved again keep their expired rows until pg_admission_store::purge_expired.
--
-- Why it never over-admits (READ COMMITTED, every caller autocommits): the transaction-scoped advisory lock on
-- hashtextextended(p_key, 7411) serialises reservations of one key across every process until the holder
-- commits. The count is a separate statement of a VOLATILE function, so it takes a fresh snapshot after the lock
-- is held and sees every lease committed before the lock was granted. (A single top-level statement, e.g. one
-- CTE, would count with a snapshot taken before any lock it takes, and could over-admit.) Hash collisions only
-- serialise two keys; they cannot admit more.
CREATE OR REPLACE FUNCTION preflight_admit(
    p_key text, p_max integer, p_ttl_ms bigint, OUT o_lease_id uuid, OUT o_in_use integer
)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    locked text;
    t timestamptz;
    total integer;
BEGIN
    -- A void result cannot be assigned to a variable; its text form ('') can.
    locked := pg_advisory_xact_lock(hashtextextended(p_key, 7411))::text;
    t := clock_timestamp();
    SELECT count(*) FILTER (WHERE l.expires_at > t), count(*) INTO o_in_use, total
    FROM preflight_leases AS l
    WHERE l.key = p_key;
    IF total > o_in_use THEN
        DELETE FROM preflight_leases AS l WHERE l.key = p_key AND l.expires_at <= t;
    END IF;
    IF o_in_use < p_max THEN
        o_lease_id := gen_random_uuid();
        INSERT INTO preflight_leases VALUES (o_lease_id, p_key, t + p_ttl_ms * interval '1 millisecond');
        o_in_use := o_in_use + 1;
    END IF;
END
$fn$;
