-- Every start of an exai process: kept so status history survives restarts.
CREATE TABLE server_starts (
    id          BIGSERIAL    PRIMARY KEY,
    started_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    version     TEXT         NOT NULL,
    transport   TEXT         NOT NULL
);
