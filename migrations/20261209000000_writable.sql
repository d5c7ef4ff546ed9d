-- Write-back, part two: what the workers need to know about each writable table when a pull
-- meets local changes still waiting to be written back. The producer writes a table's row
-- when a sync starts (from the object's section of sfsync.toml) and removes it when the object
-- loses `write`. See docs/write-back.md.
CREATE TABLE sfsync.writable (
    -- the table, in schema salesforce
    table_name        text PRIMARY KEY,
    object            text NOT NULL,
    -- what a pull does when Salesforce changed a field that also has a pending local change
    conflict          text NOT NULL DEFAULT 'local-wins'
                           CHECK (conflict IN ('local-wins', 'salesforce-wins', 'reject')),
    -- the External ID field creates are upserted on (its API name), and its column: a pull
    -- that brings a record whose create is still unanswered matches it to its row by this
    -- column, so that the row gets the record's Id instead of the table a second row
    external_id_field text NOT NULL,
    external_id_column text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Each row's last push operation, which the per-table views (sfsync.<table>_push) read.
CREATE INDEX outbox_rows ON sfsync.outbox (table_name, row_id, id);

-- A refused change (state failed) keeps its local value from the pull until its dead letter is
-- replayed or purged, as pending and in-flight changes do: the open-changes index covers it.
DROP INDEX sfsync.outbox_open;
CREATE INDEX outbox_open ON sfsync.outbox (table_name, row_id, id)
    WHERE state IN ('pending', 'in_flight', 'failed');

-- discarded: refused, and its dead letter purged (`producer dlq purge`): given up for good.
ALTER TABLE sfsync.outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE sfsync.outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'in_flight', 'applied', 'merged', 'failed', 'discarded'));

-- When a batch's publish was confirmed by the broker. A change in flight without it was claimed
-- by a push that stopped (a signal, a lost broker) before its batch reached the queue: the
-- next push puts it back to pending instead of waiting for an answer that cannot come.
ALTER TABLE sfsync.outbox ADD COLUMN sent_at timestamptz;

-- The capture trigger, now also waking `producer push --watch` (LISTEN sfsync_outbox; the
-- payload is the table). PostgreSQL folds identical notifications of one transaction into one,
-- so a statement that changes 10,000 rows sends one.
CREATE OR REPLACE FUNCTION sfsync.capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    col     text;
    changed text[] := '{}';
    before  jsonb := '{}';
BEGIN
    IF current_setting('sfsync.writer', true) = 'sfsync' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sfsync.outbox (table_name, row_id, sfid, op, columns, external_key)
        -- TG_ARGV counts from 0; the copy counts from 1, as every other array does
        VALUES (TG_TABLE_NAME, NEW.id, NEW.sfid, 'insert', ARRAY(SELECT unnest(TG_ARGV)),
                gen_random_uuid());
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD);
        new_row := to_jsonb(NEW);
        FOREACH col IN ARRAY TG_ARGV LOOP
            IF old_row -> col IS DISTINCT FROM new_row -> col THEN
                changed := changed || col;
                before := before || jsonb_build_object(col, old_row -> col);
            END IF;
        END LOOP;
        IF cardinality(changed) = 0 THEN
            RETURN NULL;
        END IF;
        INSERT INTO sfsync.outbox (table_name, row_id, sfid, op, columns, old_values)
        VALUES (TG_TABLE_NAME, NEW.id, NEW.sfid, 'update', changed, before);
    ELSE
        INSERT INTO sfsync.outbox (table_name, row_id, sfid, op)
        VALUES (TG_TABLE_NAME, OLD.id, OLD.sfid, 'delete');
    END IF;
    PERFORM pg_notify('sfsync_outbox', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
