-- Idempotent creates: the first result of a create_thing carrying a
-- request_id is kept here, so a retry returns it instead of inserting again
-- (even after the thing was renamed or deleted).
CREATE TABLE thing_request (
    request_id text PRIMARY KEY,
    thing_uuid uuid NOT NULL,
    name text NOT NULL,
    is_created_at timestamptz NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
