-- Key/value facts about this database: the store mode, the grid version, ...
CREATE TABLE IF NOT EXISTS gw_meta (
    key   text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
