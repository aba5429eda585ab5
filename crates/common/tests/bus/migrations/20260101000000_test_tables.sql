-- Tables the bus tests apply effects to.
CREATE TABLE effects (
    order_id UUID PRIMARY KEY,
    handled_by TEXT NOT NULL
);

CREATE TABLE replica (
    id      UUID PRIMARY KEY,
    version BIGINT NOT NULL,
    price   BIGINT NOT NULL
);

CREATE TABLE applied_versions (
    seq     BIGSERIAL PRIMARY KEY,
    id      UUID NOT NULL,
    version BIGINT NOT NULL
);
