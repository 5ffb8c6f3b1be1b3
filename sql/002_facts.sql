-- preflight migration 002: fact tables read by the read-only gates (bans, subscriptions, usage, org members,
-- balance, deployed state). Read by clients::pg_ban_store, pg_subscription_store, pg_usage_store,
-- pg_member_store and pg_balance_source (clients/src/pg_facts.cpp); written by pg_fact_writer.

-- Bans: a subject (user, org, IP, API key) banned until expires_at (NULL: until lifted), with a reason.
-- A subject may have several rows; it is banned while any of them is active.
CREATE TABLE IF NOT EXISTS preflight_bans (
    id bigserial PRIMARY KEY,
    subject_id text NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS preflight_bans_subject ON preflight_bans (subject_id, expires_at);

-- Subscriptions keyed by owner: an org id, or a user id for a personal subscription. Priority is the plan tier
-- (free < pro < team < enterprise); only 'active' and 'trialing' subscriptions count.
CREATE TABLE IF NOT EXISTS preflight_subscriptions (
    owner_id text PRIMARY KEY,
    plan text NOT NULL CHECK (plan IN ('free', 'pro', 'team', 'enterprise')),
    status text NOT NULL DEFAULT 'active',
    seats integer NOT NULL DEFAULT 1,
    current_period_end timestamptz
);

-- Usage per subject and billing period.
CREATE TABLE IF NOT EXISTS preflight_usage (
    subject_id text NOT NULL,
    period_start date NOT NULL,
    requests bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    tokens bigint NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    PRIMARY KEY (subject_id, period_start)
);

-- Org membership, with an optional per-member usage cap for the current period (NULL: uncapped, the usage
-- check can be skipped) and the requests the member used this period.
CREATE TABLE IF NOT EXISTS preflight_org_members (
    org_id text NOT NULL,
    user_id text NOT NULL,
    role text NOT NULL DEFAULT 'member',
    usage_cap bigint CHECK (usage_cap >= 0),
    used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS preflight_org_members_user ON preflight_org_members (user_id);

-- Self-hosted billing source: plan executions remaining per org (allowed while remaining > 0).
CREATE TABLE IF NOT EXISTS preflight_balances (
    org_id text PRIMARY KEY,
    remaining bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Deployed state per immutable deployment version id (cached by the deployed-state cache).
CREATE TABLE IF NOT EXISTS preflight_deployed_state (
    version_id text PRIMARY KEY,
    state jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
