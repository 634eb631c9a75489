-- onerecord store, schema version 1. See docs/data-model.md.
-- Times are TEXT in UTC, fixed width (2006-01-02T15:04:05.000000000Z) so
-- they sort as strings; NULL means unknown.

CREATE TABLE portals (
    name               TEXT PRIMARY KEY,
    display_name       TEXT NOT NULL DEFAULT '',
    fhir_base          TEXT NOT NULL DEFAULT '',
    client_id          TEXT NOT NULL DEFAULT '',
    scope              TEXT NOT NULL DEFAULT '',
    redirect_port      INTEGER NOT NULL DEFAULT 0,
    confidential       INTEGER NOT NULL DEFAULT 0,
    source             TEXT NOT NULL DEFAULT '',
    brand_url          TEXT NOT NULL DEFAULT '',
    smart_config       TEXT,
    capability         TEXT,
    discovered_at      TEXT,
    conn_state         TEXT NOT NULL DEFAULT 'not_connected',
    conn_reason        TEXT NOT NULL DEFAULT '',
    connected_at       TEXT,
    disconnected_at    TEXT,
    patient_id         TEXT NOT NULL DEFAULT '',
    patient_name       TEXT NOT NULL DEFAULT '',
    patient_birth_date TEXT NOT NULL DEFAULT '',
    granted_scope      TEXT NOT NULL DEFAULT '',
    has_refresh_token  INTEGER NOT NULL DEFAULT 0,
    access_expires_at  TEXT,
    grant_expires_at   TEXT,
    last_sync_at       TEXT,
    last_sync_status   TEXT NOT NULL DEFAULT '',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- One row per (portal, type, id): the newest version seen. raw is the JSON
-- exactly as the server sent it and is the last column so that scans over
-- the small columns do not read its overflow pages.
CREATE TABLE resources (
    portal       TEXT NOT NULL REFERENCES portals(name),
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   TEXT NOT NULL DEFAULT '',
    last_updated TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL,
    fetched_at   TEXT NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    deleted_at   TEXT,
    raw          TEXT NOT NULL
);
CREATE UNIQUE INDEX resources_key ON resources(portal, type, id);

-- Previous versions: a row is copied here, unchanged, just before the
-- resource is overwritten by different content. seq gives the order.
CREATE TABLE resource_history (
    seq          INTEGER PRIMARY KEY,
    portal       TEXT NOT NULL REFERENCES portals(name),
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   TEXT NOT NULL DEFAULT '',
    last_updated TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL,
    fetched_at   TEXT NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    deleted_at   TEXT,
    replaced_at  TEXT NOT NULL,
    raw          TEXT NOT NULL
);
CREATE INDEX resource_history_key ON resource_history(portal, type, id, seq);

-- Maintained in the same transaction as every write to resources, so that
-- status answers from a handful of rows instead of counting millions.
CREATE TABLE resource_counts (
    portal  TEXT NOT NULL REFERENCES portals(name),
    type    TEXT NOT NULL,
    live    INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (portal, type)
) WITHOUT ROWID;

CREATE TABLE cursors (
    portal       TEXT NOT NULL REFERENCES portals(name),
    key          TEXT NOT NULL,
    last_updated TEXT NOT NULL DEFAULT '',
    complete     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (portal, key)
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    portal      TEXT NOT NULL REFERENCES portals(name),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL
);
CREATE INDEX sync_runs_portal ON sync_runs(portal, id);

CREATE TABLE sync_run_types (
    run_id    INTEGER NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
    type      TEXT NOT NULL,
    status    TEXT NOT NULL,
    error     TEXT NOT NULL DEFAULT '',
    new       INTEGER NOT NULL DEFAULT 0,
    changed   INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deleted   INTEGER NOT NULL DEFAULT 0,
    requests  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, type)
) WITHOUT ROWID;
