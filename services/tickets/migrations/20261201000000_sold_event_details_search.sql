-- Sold is a state: a completed order keeps its order_id on the ticket and
-- stamps sold_at. The reservation's end is kept to show the seller.
ALTER TABLE tickets
    ADD COLUMN reserved_until TIMESTAMPTZ,
    ADD COLUMN sold_at        TIMESTAMPTZ,
    -- What the ticket is for; optional, so tickets listed before stay valid.
    ADD COLUMN event_name     TEXT,
    ADD COLUMN venue          TEXT,
    ADD COLUMN city           TEXT,
    ADD COLUMN event_date     TIMESTAMPTZ,
    ADD COLUMN section        TEXT,
    ADD COLUMN seat_row       TEXT,
    ADD COLUMN seat           TEXT,
    -- Full-text search over what a buyer types: event, title, venue, city.
    -- The 'simple' configuration neither stems nor drops words, which suits
    -- names of bands, venues and towns.
    ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (
        to_tsvector('simple',
            coalesce(event_name, '') || ' ' || title || ' ' ||
            coalesce(venue, '') || ' ' || coalesce(city, ''))
    ) STORED;

-- The listings hold free tickets only (order_id IS NULL; a sold ticket keeps
-- its order). One index per sort key, each ending in id for the keyset.
CREATE INDEX tickets_listed_price ON tickets (price, id) WHERE order_id IS NULL;
CREATE INDEX tickets_listed_date
    ON tickets ((coalesce(event_date, 'infinity'::timestamptz)), id) WHERE order_id IS NULL;
CREATE INDEX tickets_listed_search ON tickets USING GIN (search) WHERE order_id IS NULL;
-- A seller's own tickets, newest first.
CREATE INDEX tickets_seller_newest ON tickets (user_id, id DESC);
