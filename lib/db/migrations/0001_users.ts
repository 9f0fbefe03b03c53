/**
 * Migration 1: users and their privileges, exactly as the operator guide names them, so
 * operators' hand-written SQL (`INSERT INTO tml_switchboard.users ...`) keeps working.
 */
import type { Migration } from "../migrations.ts";

export const migration0001Users: Migration = {
  version: 1,
  name: "users",
  sql: `
CREATE TABLE users (
  user_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text UNIQUE NOT NULL,
  email text UNIQUE NOT NULL,
  password_hash text NOT NULL,
  user_type text NOT NULL DEFAULT 'normal' CHECK (user_type IN ('normal', 'system')),
  locked boolean NOT NULL DEFAULT false
);
CREATE TABLE user_privileges (
  user_id uuid NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  permission text NOT NULL,
  PRIMARY KEY (user_id, permission)
);
`,
};
