/**
 * Migration 4: job consoles. Chunks of a job's console output, already redacted, at their
 * byte offset in the stored stream; `console_raw_bytes` counts what the supervisor sent, so a
 * resent chunk is recognised after a switchboard restart too.
 */
import type { Migration } from "../migrations.ts";

export const migration0004Console: Migration = {
  version: 4,
  name: "console",
  sql: `
CREATE TABLE job_console (
  job_id uuid NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  byte_offset bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (job_id, byte_offset)
);
ALTER TABLE jobs ADD COLUMN console_raw_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN console_bytes bigint NOT NULL DEFAULT 0;
`,
};
