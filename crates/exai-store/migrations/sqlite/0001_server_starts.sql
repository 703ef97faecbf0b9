-- Every start of an exai process: kept so status history survives restarts.
CREATE TABLE server_starts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    version     TEXT    NOT NULL,
    transport   TEXT    NOT NULL
);
