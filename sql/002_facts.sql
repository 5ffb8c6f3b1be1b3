-- preflight migration 002: fact tables read by the read-only gates (bans, subscriptions, usage, org members,
-- balance, deployed state). Their store interfaces are defined by the gates work; these are the tables only.

-- Bans: a subject (user, org, IP, API key) banned until expires_at (NULL: until lifted), with a reason.
CREATE TABLE IF NOT EXISTS preflight_bans (
    id bigserial PRIMARY KEY,
    subject_id text NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS preflight_bans_subject ON preflight_bans (subject_id, expires_at);

-- Subscriptions of orgs and of users (personal); the highest priority applicable one wins.
CREATE TABLE IF NOT EXISTS preflight_subscriptions (
    subject_id text PRIMARY KEY,
    plan text NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    seats integer NOT NULL DEFAULT 1,
    current_period_end timestamptz
);

-- Usage per subject and billing period.
CREATE TABLE IF NOT EXISTS preflight_usage (
    subject_id text NOT NULL,
    period_start date NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subject_id, period_start)
);

-- Org membership, with an optional per-member usage cap (NULL: uncapped, the usage query can be skipped).
CREATE TABLE IF NOT EXISTS preflight_org_members (
    org_id text NOT NULL,
    user_id text NOT NULL,
    role text NOT NULL DEFAULT 'member',
    usage_cap bigint,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS preflight_org_members_user ON preflight_org_members (user_id);

-- Prepaid balance per org: a self-hosted billing source (micro-units of the currency).
CREATE TABLE IF NOT EXISTS preflight_balances (
    org_id text PRIMARY KEY,
    balance_micros bigint NOT NULL,
    currency text NOT NULL DEFAULT 'USD',
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Deployed state per immutable deployment version id (cached by the deployed-state cache).
CREATE TABLE IF NOT EXISTS preflight_deployed_state (
    version_id text PRIMARY KEY,
    state jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
