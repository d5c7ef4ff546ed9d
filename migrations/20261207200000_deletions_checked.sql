-- Until when each object's deletions are reflected in its table: the start of the last run that
-- published them (what getDeleted reported, or what comparing Ids found), or of the full read
-- that filled a new table. The next run asks getDeleted from there, minus the overlap. The
-- watermark cannot serve: it stands still while an object does not change, and a window older
-- than getDeleted's 30 days would then cost a comparison of every Id on every sync.
ALTER TABLE sfsync.sync_state ADD COLUMN deletions_checked_until timestamptz;
