-- preflight migration 009: usage recorded once per execution (clients::pg_usage_store::record; the default
-- pipeline records an admitted execution's usage when its lease is released).
--
-- One row per recorded execution (its lease id): a record and its addition to preflight_usage are one statement, so
-- a second record of the same id (a retried release, two processes releasing one lease) adds nothing. Rows of past
-- periods are no longer needed: pg_usage_store::purge_records (run by the store set's purge) deletes those of
-- periods before the previous month.
CREATE TABLE IF NOT EXISTS preflight_usage_records (
    record_id text PRIMARY KEY,
    subject_id text NOT NULL,
    period_start date NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS preflight_usage_records_period ON preflight_usage_records (period_start);
