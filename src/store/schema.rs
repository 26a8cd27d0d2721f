//! The store's schema as append-only migrations, applied in order and keyed by SQLite's
//! `user_version`. Never edit a shipped migration: add a new one.

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: passes, snapshots, links, baseline, journal.
    r#"
CREATE TABLE passes (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    outcome       TEXT,
    okta_read     INTEGER NOT NULL DEFAULT 0,
    telus_read    INTEGER NOT NULL DEFAULT 0,
    planned       INTEGER NOT NULL DEFAULT 0,
    applied       INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    failed_users  INTEGER NOT NULL DEFAULT 0,
    message       TEXT
);
CREATE TABLE okta_users (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    last_updated  TEXT,
    profile       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE telus_users (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    fields        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE links (
    okta_id       TEXT PRIMARY KEY,
    ext_id        TEXT NOT NULL UNIQUE,
    linked_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE baseline (
    okta_id       TEXT NOT NULL,
    attr          TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (okta_id, attr)
) WITHOUT ROWID;
CREATE TABLE journal (
    id            INTEGER PRIMARY KEY,
    pass_id       INTEGER NOT NULL REFERENCES passes(id),
    time          TEXT NOT NULL,
    direction     TEXT NOT NULL,
    system        TEXT NOT NULL,
    okta_id       TEXT,
    ext_id        TEXT,
    user_email    TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    field         TEXT NOT NULL,
    old           TEXT,
    new           TEXT,
    rule          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    error_code    TEXT,
    explanation   TEXT
);
CREATE INDEX journal_time ON journal(time);
CREATE INDEX journal_user ON journal(user_email);
CREATE INDEX journal_outcome ON journal(outcome) WHERE outcome = 'planned';
"#,
    // 2: per-user failure tracking (retry backoff, quarantine) and small key/value state.
    r#"
CREATE TABLE user_failures (
    user_key        TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    consecutive     INTEGER NOT NULL,
    last_code       TEXT,
    last_error      TEXT,
    last_failed_at  TEXT NOT NULL,
    next_retry_at   TEXT NOT NULL,
    quarantined     INTEGER NOT NULL DEFAULT 0,
    data_hash       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE meta (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 3: credentials that must survive restarts (the rotating TELUS refresh token).
    r#"
CREATE TABLE credentials (
    system              TEXT PRIMARY KEY,
    access_token        TEXT NOT NULL,
    access_expires_at   INTEGER NOT NULL,
    refresh_token       TEXT,
    refresh_expires_at  INTEGER,
    updated_at          TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 4: the baseline kept as one row per user (attribute -> value as a JSON object): a
    // tenth of the rows and of the space of one row per attribute.
    r#"
CREATE TABLE baseline_users (
    okta_id     TEXT PRIMARY KEY,
    attrs       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO baseline_users (okta_id, attrs)
    SELECT okta_id, json_group_object(attr, value) FROM baseline GROUP BY okta_id;
DROP TABLE baseline;
"#,
    // 5: field names numbered once; snapshots and baselines store `[[id, value], ...]`.
    r#"
CREATE TABLE field_names (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
);
"#,
    // 6: each Okta user's profile source (credentials.provider.type), each TELUS user's
    // CustomerDirectoryId reference, and the Okta attributes Okta refused for one user, with
    // what the refusal depended on (the user's record and the attribute's master).
    r#"
ALTER TABLE okta_users ADD COLUMN provider TEXT;
ALTER TABLE telus_users ADD COLUMN directory_ref TEXT;
CREATE TABLE okta_refusals (
    okta_id       TEXT NOT NULL,
    attr          TEXT NOT NULL,
    email         TEXT NOT NULL,
    last_updated  TEXT,
    provider      TEXT,
    master        TEXT NOT NULL,
    error_code    TEXT,
    explanation   TEXT NOT NULL,
    refused_at    TEXT NOT NULL,
    PRIMARY KEY (okta_id, attr)
) WITHOUT ROWID;
"#,
    // 7: whether the Company Directory listed each TELUS user (its direct number and custom
    // fields are unknown when it did not), and the bulk-update task a journalled TELUS write
    // went out in (settled by polling the task before any read).
    r#"
ALTER TABLE telus_users ADD COLUMN in_directory INTEGER NOT NULL DEFAULT 1;
ALTER TABLE journal ADD COLUMN task_id TEXT;
"#,
    // 8: known data problems: a value that cannot be written to `system` until it is fixed
    // at its source, held while the values on both sides (their fingerprint) are unchanged.
    r#"
CREATE TABLE data_problems (
    user_key      TEXT NOT NULL,
    okta_id       TEXT,
    ext_id        TEXT,
    email         TEXT NOT NULL,
    attr          TEXT NOT NULL,
    system        TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    code          TEXT NOT NULL,
    explanation   TEXT NOT NULL,
    since         TEXT NOT NULL,
    PRIMARY KEY (user_key, attr, system)
) WITHOUT ROWID;
"#,
    // 9: the import queue as the last whole pass computed it, each candidate's whole-org
    // lookup (reused while the email is unchanged), and the emails the admin ignores.
    r#"
CREATE TABLE import_queue (
    ext_id        TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    outcome       TEXT NOT NULL,
    okta_id       TEXT,
    detail        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE import_lookups (
    ext_id        TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    checked_at    TEXT NOT NULL,
    holders       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE import_ignored (
    email         TEXT PRIMARY KEY,
    since         TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 10: where a link came from when no pass matched it (`init --links`, `import link`).
    r#"
ALTER TABLE links ADD COLUMN origin TEXT;
"#,
    // 11: the saved plan a pass applied (`sync --plan`), for `history --plan`.
    r#"
ALTER TABLE passes ADD COLUMN plan_id TEXT;
"#,
];
