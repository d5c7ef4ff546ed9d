-- A RabbitMQ node low on memory or disk blocks every publishing connection of the cluster
-- until the alarm clears. The producer waits, and records it on the run it is publishing, so
-- that `producer status` shows why the run is not moving.
ALTER TABLE sfsync.runs
    ADD COLUMN blocked_since  timestamptz,
    ADD COLUMN blocked_reason text;
