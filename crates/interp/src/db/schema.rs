//! The feature database's tables. README.md ("The feature database") documents each column;
//! keep the two in step. A database names its format and schema version in `meta`, and
//! readers refuse any other.

/// `meta.format` of every feature database.
pub const FORMAT: &str = "saelab-features";
/// Bumped whenever a table or a column's meaning changes.
pub const SCHEMA_VERSION: u32 = 2;

/// The statements that create an empty database.
pub const CREATE: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE tokens (
    id      INTEGER PRIMARY KEY,
    text    TEXT NOT NULL,
    special INTEGER NOT NULL
);
CREATE TABLE windows (
    id  INTEGER PRIMARY KEY,
    ids BLOB NOT NULL
);
CREATE TABLE dictionaries (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    path         TEXT NOT NULL,
    hook         TEXT NOT NULL,
    architecture TEXT NOT NULL,
    d_in         INTEGER NOT NULL,
    d_sae        INTEGER NOT NULL,
    positions    INTEGER NOT NULL,
    l0           REAL NOT NULL,
    lens         TEXT NOT NULL,
    hist_edges   TEXT NOT NULL
);
CREATE TABLE features (
    dict     INTEGER NOT NULL,
    feature  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    density  REAL NOT NULL,
    mean_act REAL NOT NULL,
    max_act  REAL NOT NULL,
    hist     BLOB NOT NULL,
    p_stay   REAL,
    mean_run REAL,
    PRIMARY KEY (dict, feature)
) WITHOUT ROWID;
CREATE INDEX features_density ON features (dict, density);
CREATE INDEX features_max ON features (dict, max_act);
CREATE TABLE examples (
    id      INTEGER PRIMARY KEY,
    dict    INTEGER NOT NULL,
    feature INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    bin     INTEGER,
    rank    INTEGER NOT NULL,
    window  INTEGER NOT NULL,
    pos     INTEGER NOT NULL,
    token   INTEGER NOT NULL,
    value   REAL NOT NULL,
    start   INTEGER NOT NULL,
    acts    BLOB NOT NULL
);
CREATE INDEX examples_feature ON examples (dict, feature, kind, bin, rank);
CREATE INDEX examples_token ON examples (dict, token, kind);
CREATE TABLE quantile_bins (
    dict    INTEGER NOT NULL,
    feature INTEGER NOT NULL,
    bin     INTEGER NOT NULL,
    lo      REAL NOT NULL,
    hi      REAL NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (dict, feature, bin)
) WITHOUT ROWID;
CREATE TABLE lens (
    dict    INTEGER NOT NULL,
    feature INTEGER NOT NULL,
    side    INTEGER NOT NULL,
    rank    INTEGER NOT NULL,
    token   INTEGER NOT NULL,
    value   REAL NOT NULL,
    PRIMARY KEY (dict, feature, side, rank)
) WITHOUT ROWID;
CREATE INDEX lens_token ON lens (dict, token);
CREATE TABLE lens_excluded (
    token  INTEGER PRIMARY KEY,
    reason TEXT NOT NULL
);
CREATE TABLE nearest (
    dict          INTEGER NOT NULL,
    feature       INTEGER NOT NULL,
    other         INTEGER NOT NULL,
    rank          INTEGER NOT NULL,
    other_feature INTEGER NOT NULL,
    cosine        REAL NOT NULL,
    PRIMARY KEY (dict, feature, other, rank)
) WITHOUT ROWID;
CREATE TABLE ablations (
    example INTEGER PRIMARY KEY,
    method  TEXT NOT NULL,
    base    REAL NOT NULL,
    deltas  BLOB NOT NULL
);
"#;
