/**
 * Migration 2: API tokens (only a SHA-256 of each token is stored) and registered supervisors
 * (with the SHA-256 of their connection token).
 */
import type { Migration } from "../migrations.ts";

export const migration0002Accounts: Migration = {
  version: 2,
  name: "accounts",
  sql: `
CREATE TABLE api_tokens (
  token_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  token_hash text UNIQUE NOT NULL,
  description text,
  -- A subset of the owner's permissions; NULL carries all of them.
  permissions text[],
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
CREATE TABLE supervisors (
  supervisor_id uuid PRIMARY KEY,
  name text UNIQUE NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  token_hash text UNIQUE NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz
);
`,
};
