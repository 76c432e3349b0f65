-- 0010 registry: the two-level grid, its people and terminals, the market-entity registry.
-- Owned by grid/ (grid/store.py writes these tables; everyone else reads them).
-- Geometry is GeoJSON (WGS-84 lon/lat) in jsonb: no PostGIS needed; point-in-grid is done in
-- memory by grid.locate.GridLocator. gw_meta('grid_version') (table from 0001) changes on every import.

CREATE TABLE IF NOT EXISTS branch_office (
    code      text PRIMARY KEY,                 -- county-level division code, e.g. 360602
    name_zh   text NOT NULL,
    name_en   text NOT NULL DEFAULT '',
    synthetic boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS grid_level1 (
    code         text PRIMARY KEY,              -- township/street code, e.g. 360602001
    name_zh      text NOT NULL,
    name_en      text NOT NULL DEFAULT '',
    branch_code  text NOT NULL REFERENCES branch_office (code),
    geom         jsonb NOT NULL,                -- GeoJSON Polygon/MultiPolygon
    centroid_lat double precision,
    centroid_lon double precision,
    synthetic    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS grid_level1_branch_idx ON grid_level1 (branch_code);

CREATE TABLE IF NOT EXISTS grid_level2 (
    code         text PRIMARY KEY,              -- village/community code, e.g. 360602001001
    name_zh      text NOT NULL,
    name_en      text NOT NULL DEFAULT '',
    level1_code  text NOT NULL REFERENCES grid_level1 (code),
    geom         jsonb NOT NULL,
    centroid_lat double precision,
    centroid_lon double precision,
    area_km2     double precision,
    synthetic    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS grid_level2_level1_idx ON grid_level2 (level1_code);

-- Level-2 grids sharing a border of positive length; both directions stored (a,b) and (b,a).
CREATE TABLE IF NOT EXISTS grid_adjacency (
    a text NOT NULL REFERENCES grid_level2 (code) ON DELETE CASCADE,
    b text NOT NULL REFERENCES grid_level2 (code) ON DELETE CASCADE,
    PRIMARY KEY (a, b),
    CHECK (a <> b)
);

CREATE TABLE IF NOT EXISTS person (
    person_id text PRIMARY KEY,
    name      text NOT NULL,
    role      text NOT NULL CHECK (role IN ('level1_supervisor', 'level2_supervisor', 'co_manager', 'informant')),
    phone     text NOT NULL DEFAULT '',
    synthetic boolean NOT NULL DEFAULT false
);

-- level1_supervisor -> one level-1 code; level2_supervisor -> one or more level-2 codes;
-- co_manager / informant -> one level-2 code. grid_code is either level, so no foreign key.
CREATE TABLE IF NOT EXISTS person_grid (
    person_id text NOT NULL REFERENCES person (person_id) ON DELETE CASCADE,
    grid_code text NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (person_id, grid_code, role)
);
CREATE INDEX IF NOT EXISTS person_grid_grid_idx ON person_grid (grid_code, role);

CREATE TABLE IF NOT EXISTS terminal (
    terminal_id text PRIMARY KEY,
    person_id   text REFERENCES person (person_id) ON DELETE SET NULL,
    model       text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS terminal_person_idx ON terminal (person_id);

-- grid2_code / grid1_code NULL = the entity lies outside every grid (reported at import, kept).
CREATE TABLE IF NOT EXISTS market_entity (
    uscc                      text PRIMARY KEY CHECK (length(uscc) = 18),
    name                      text NOT NULL,
    kind                      text NOT NULL CHECK (kind IN ('enterprise', 'individual_business', 'farmer_coop')),
    industry                  text NOT NULL DEFAULT '',
    licence_food              boolean NOT NULL DEFAULT false,
    licence_drug              boolean NOT NULL DEFAULT false,
    licence_special_equipment boolean NOT NULL DEFAULT false,
    address                   text NOT NULL DEFAULT '',
    lat                       double precision,
    lon                       double precision,
    registered_on             date,
    risk_level                text NOT NULL DEFAULT 'B' CHECK (risk_level IN ('A', 'B', 'C', 'D')),
    grid2_code                text,
    grid1_code                text,
    synthetic                 boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS market_entity_grid2_idx ON market_entity (grid2_code);
CREATE INDEX IF NOT EXISTS market_entity_grid1_idx ON market_entity (grid1_code);
