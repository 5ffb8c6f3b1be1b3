-- preflight migration 003: a cheaper admission reservation, preflight_admit (used by clients::pg_admission_store
-- from this version on). preflight_reserve (001) stays for binaries of earlier versions; both take the same
-- per-key advisory lock, so a fleet mixing old and new binaries still never over-admits.
--
-- Same contract as preflight_reserve: takes one slot of p_key when fewer than p_max live leases exist
-- (live: expires_at > clock_timestamp()); returns the new lease id (NULL when full) and the live leases of the
-- key after the call. What it does differently, each measured cheaper (docs/postgres.md has the figures):
--   * OUT parameters instead of RETURNS TABLE / RETURN QUERY: no result query, no tuplestore in the function;
--   * the lock is taken by an assignment (a plpgsql "simple expression", evaluated without an SPI query)
--     instead of PERFORM;
--   * one statement counts the live leases and inserts the new one (a data-modifying CTE), instead of
--     DELETE, then SELECT count, then INSERT: expired leases are not counted, so they need not be deleted
--     first;
--   * expired leases of the key are deleted only when that same statement saw some (rare: a holder that neither
--     released nor renewed), so rows of a key in use stay bounded by p_max plus the leases that expired since
--     its previous reservation. Keys that are never reserved again keep their expired rows until
--     pg_admission_store::purge_expired.
--
-- Why it never over-admits (READ COMMITTED, every caller autocommits): the transaction-scoped advisory lock on
-- hashtextextended(p_key, 7411) serialises reservations of one key across every process until the holder
-- commits. The CTE is a separate statement of a VOLATILE function, so it takes a fresh snapshot after the lock
-- is held and counts every lease committed before it was granted. (A single top-level statement would count
-- with a snapshot taken before any lock it takes, and could over-admit.) Hash collisions only serialise two
-- keys; they cannot admit more.
CREATE OR REPLACE FUNCTION preflight_admit(
    p_key text, p_max integer, p_ttl_ms bigint, OUT o_lease_id uuid, OUT o_in_use integer
)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    locked text;
    t timestamptz;
    expired bigint;
BEGIN
    -- A void function cannot be assigned to a variable; its text form ('') can.
    locked := pg_advisory_xact_lock(hashtextextended(p_key, 7411))::text;
    t := clock_timestamp();
    WITH c AS (
        SELECT count(*) FILTER (WHERE l.expires_at > t)::integer AS live,
               count(*) FILTER (WHERE l.expires_at <= t) AS expired
        FROM preflight_leases AS l
        WHERE l.key = p_key
    ), i AS (
        INSERT INTO preflight_leases
        SELECT gen_random_uuid(), p_key, t + p_ttl_ms * interval '1 millisecond' FROM c WHERE c.live < p_max
        RETURNING lease_id
    )
    SELECT i.lease_id, c.live + (i.lease_id IS NOT NULL)::integer, c.expired
    INTO o_lease_id, o_in_use, expired
    FROM c LEFT JOIN i ON true;
    IF expired > 0 THEN
        DELETE FROM preflight_leases AS l WHERE l.key = p_key AND l.expires_at <= t;
    END IF;
END
$fn$;
