-- Write-back, part one: capture. The changes the application makes to a writable table (an
-- object with `write` in sfsync.toml) are recorded here by the table's trigger, in the
-- application's own transaction, so that a change is captured exactly when it commits. sfsync's
-- own writes (the pull) are never captured: its connections set `sfsync.writer = 'sfsync'` in
-- each transaction. See docs/write-back.md.
CREATE TABLE sfsync.outbox (
    id          bigserial   PRIMARY KEY,
    -- the writable table, in schema salesforce
    table_name  text        NOT NULL,
    -- the row's local id (the table's `id` column): rows inserted by the application have no
    -- sfid until Salesforce assigns one, so the local id is what names a row for its life
    row_id      bigint      NOT NULL,
    -- the row's sfid when the change was made (null for a row not yet in Salesforce)
    sfid        varchar(18),
    op          text        NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    -- insert: every write column; update: the write columns whose value really changed;
    -- delete: none
    columns     text[]      NOT NULL DEFAULT '{}',
    -- update: those columns' values before the change, to tell a conflict (Salesforce changed
    -- the field too) from the echo of our own change
    old_values  jsonb       NOT NULL DEFAULT '{}',
    captured_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- pending: waiting to be sent; in_flight: sent in batch `batch_id`, not answered yet;
    -- applied: Salesforce has it; merged: folded into a later change of the same record, or
    -- cancelled by it (a row inserted and deleted before either was sent); failed: refused by
    -- Salesforce, dead-lettered
    state       text        NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'in_flight', 'applied', 'merged', 'failed')),
    batch_id    uuid,
    -- failed: Salesforce's answer for the record ({"statusCode", "message", "fields"})
    error       jsonb,
    -- insert: the value of the org's external Id field for the new record, so that a create
    -- sent again after a lost answer is an upsert that finds the record, not a second record
    external_key uuid
);

-- A record's pending changes, in order: what dispatch coalesces, and what a pull consults.
CREATE INDEX outbox_open ON sfsync.outbox (table_name, row_id, id)
    WHERE state IN ('pending', 'in_flight');

-- The capture trigger of every writable table; its arguments are the table's write columns.
CREATE FUNCTION sfsync.capture() RETURNS trigger LANGUAGE plpgsql AS $$
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
        IF cardinality(changed) > 0 THEN
            INSERT INTO sfsync.outbox (table_name, row_id, sfid, op, columns, old_values)
            VALUES (TG_TABLE_NAME, NEW.id, NEW.sfid, 'update', changed, before);
        END IF;
    ELSE
        INSERT INTO sfsync.outbox (table_name, row_id, sfid, op)
        VALUES (TG_TABLE_NAME, OLD.id, OLD.sfid, 'delete');
    END IF;
    RETURN NULL;
END
$$;

-- A TRUNCATE fires no row triggers: its rows would vanish here and stay in Salesforce.
CREATE FUNCTION sfsync.refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of %.% refused: the table is written back to Salesforce, and a TRUNCATE would remove its rows here without deleting them there', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING HINT = 'Delete the rows with DELETE (each is then deleted in Salesforce), or make the table read-only first: remove `write` from its [objects.<Name>] section in sfsync.toml and run producer sync.';
END
$$;
