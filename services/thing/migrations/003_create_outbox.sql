-- The transactional outbox of natsrpc_pg (natsrpc_pg.h): every create,
-- rename and delete writes its event here in the same statement, and the
-- relay publishes the rows to JetStream, so an event exists exactly when
-- its change committed.
CREATE TABLE nrpc_outbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq bigserial NOT NULL,
    service text NOT NULL,
    event text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_until timestamptz,
    sent_at timestamptz
);
CREATE INDEX nrpc_outbox_pending ON nrpc_outbox (service, seq) WHERE sent_at IS NULL;
