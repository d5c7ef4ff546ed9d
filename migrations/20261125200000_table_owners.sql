-- Which object each table in schema "salesforce" holds. sfsync.toml may name an object's table
-- (`[objects.Contact] table = "people"`); this keeps two objects from ever writing one table,
-- which would mix their rows beyond repair. The producer claims a table when it first prepares
-- it; tables made before this migration are claimed by the first object synced into them.
CREATE TABLE sfsync.table_owners (
    table_name text        PRIMARY KEY,
    object     text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
