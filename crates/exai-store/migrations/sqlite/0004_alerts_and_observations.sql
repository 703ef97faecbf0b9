-- Alerts and the AI auditor (issue 8). `alerts` keeps every raise (firing = TRUE) and clear (firing = FALSE) of a
-- rule; `auditor_observations` keeps what the auditor model noticed, until someone acknowledges it.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       BIGINT  NOT NULL,
    rule        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    firing      BOOLEAN NOT NULL
);
CREATE INDEX alerts_at ON alerts (at_ms, id);

CREATE TABLE auditor_observations (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms               BIGINT  NOT NULL,
    severity            TEXT    NOT NULL,
    category            TEXT    NOT NULL,
    message             TEXT    NOT NULL,
    evidence            TEXT    NOT NULL,
    acknowledged        BOOLEAN NOT NULL DEFAULT FALSE,
    acknowledged_at_ms  BIGINT
);
CREATE INDEX auditor_observations_at ON auditor_observations (at_ms, id);
