-- Which Salesforce field each column of a synced table holds, and whether syncs still fill it.
-- A field can vanish from the integration user's describe (field-level security hides it, an
-- admin deletes it) or come into it (a new custom field); the column is never dropped, so this
-- table is where sfsync remembers which columns are current and which only keep old values.
-- The producer writes it: when it adds a column, and after each sync from what describe said.
CREATE TABLE sfsync.columns (
    table_name     text        NOT NULL,
    column_name    text        NOT NULL,
    object         text        NOT NULL,
    field          text        NOT NULL,
    -- synced: every sync reads the field; stale: no sync reads it any more (see reason), and the
    -- column keeps the values it had
    state          text        NOT NULL DEFAULT 'synced' CHECK (state IN ('synced', 'stale')),
    -- when the column last changed state (or was first recorded)
    since          timestamptz NOT NULL DEFAULT now(),
    -- why a stale column is stale, e.g. 'no longer in the describe'
    reason         text,
    -- a formula field (describe's "calculated"): its values change without a new
    -- SystemModstamp, so `sync --formula-refresh` re-reads it
    formula        boolean     NOT NULL DEFAULT false,
    -- the rows that existed when the column was added (or the field came back) have not been
    -- given the field's values yet; cleared once a back-fill or a full sync has published them
    needs_backfill boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (table_name, column_name)
);
