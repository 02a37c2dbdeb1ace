-- Organizations that publish their ledger's checkpoint and hash tiles without a token
-- (docs/ledger-format.md, "Tiles"). A row is the opt-in; deleting it withdraws it.
-- Ownership, grants and policies: policies/65_ledger_tiles.sql.
CREATE TABLE audit_public_ledgers (
    ledger_id    uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE RESTRICT,
    published_by uuid,
    published_at timestamptz NOT NULL DEFAULT now()
);
