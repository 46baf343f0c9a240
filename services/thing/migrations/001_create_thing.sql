-- Things, oldest first: the index serves keyset pagination on
-- (is_created_at, uuid), so a page costs the same however large the table.
CREATE TABLE thing (
    uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    is_created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thing_created_order ON thing (is_created_at, uuid);
