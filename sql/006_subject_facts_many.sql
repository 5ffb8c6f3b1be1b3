-- preflight migration 006: preflight_subject_facts_many, the combined reads of several requests in one call (used by
-- clients::pg_subject_facts_source when the reads of more than one request wait for the same call; docs/postgres.md).
--
-- The statement preflight_subject_facts (clients/src/pg_facts.cpp) reads one request's facts: its active ban, its
-- highest counting subscription, its usage for the period and its membership, as four lateral subqueries. Under
-- load many requests start their reads while earlier calls are in flight; this function takes the parameters of all
-- of them as arrays (the i-th elements are one request) and answers one row per request: its index (o, from 1),
-- then exactly the columns of preflight_subject_facts, from the same subqueries with the same rules and indexes.
--
-- Parameters, per request: p_bans the ban subjects as the text of a text[] literal (in priority order), p_user and
-- p_org ('' = none), p_usage_subject ('' = no usage lookup) and p_usage_period (a date; '' with no subject),
-- p_membership (look the membership up). A period that is not a date fails the call (22007); the client then reads
-- each request alone.
--
-- plan_cache_mode: as in 005, generic plans; the planner cannot know the arrays' length and would re-plan each call.
CREATE OR REPLACE FUNCTION preflight_subject_facts_many(
    p_bans text[], p_user text[], p_org text[], p_usage_subject text[], p_usage_period text[], p_membership boolean[]
)
RETURNS TABLE (
    o bigint, ban_subject text, ban_reason text, ban_until_us bigint,
    sub_owner text, sub_plan text, sub_status text, sub_seats integer, sub_end_us bigint,
    usage_requests bigint, usage_tokens bigint, member_role text, member_usage_cap bigint, member_used bigint
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    RETURN QUERY
    SELECT q.o, b.subject_id, b.reason, (extract(epoch FROM b.expires_at) * 1000000)::bigint,
           s.owner_id, s.plan, s.status, s.seats, (extract(epoch FROM s.current_period_end) * 1000000)::bigint,
           u.requests, u.tokens, m.role, m.usage_cap, m.used
    FROM unnest(p_bans, p_user, p_org, p_usage_subject, p_usage_period, p_membership) WITH ORDINALITY
         AS q(bans, user_id, org_id, usage_subject, usage_period, membership, o)
    LEFT JOIN LATERAL (SELECT b.subject_id, b.reason, b.expires_at
        FROM unnest(q.bans::text[]) WITH ORDINALITY AS s(id, ord) JOIN preflight_bans AS b ON b.subject_id = s.id
        WHERE b.expires_at IS NULL OR b.expires_at > clock_timestamp()
        ORDER BY s.ord, b.expires_at DESC NULLS FIRST, b.id DESC LIMIT 1) AS b ON true
    LEFT JOIN LATERAL (SELECT x.owner_id, x.plan, x.status, x.seats, x.current_period_end
        FROM preflight_subscriptions AS x
        WHERE x.owner_id IN (NULLIF(q.user_id, ''), NULLIF(q.org_id, '')) AND x.status IN ('active', 'trialing')
        ORDER BY array_position(ARRAY['free', 'pro', 'team', 'enterprise']::text[], x.plan) DESC,
                 x.owner_id = q.user_id DESC LIMIT 1) AS s ON true
    LEFT JOIN LATERAL (SELECT x.requests, x.tokens FROM preflight_usage AS x
        WHERE q.usage_subject <> '' AND x.subject_id = q.usage_subject
          AND x.period_start = NULLIF(q.usage_period, '')::date) AS u ON true
    LEFT JOIN LATERAL (SELECT x.role, x.usage_cap, x.used FROM preflight_org_members AS x
        WHERE q.membership AND x.org_id = q.org_id AND x.user_id = q.user_id) AS m ON true;
END
$fn$;
