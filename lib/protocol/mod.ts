/** The wire protocols of tml: one version integer and the zod schemas of every message. */
export * from "./version.ts";
export * from "./common.ts";
export * from "./api.ts";
export * from "./supervisor.ts";
export * from "./puppet.ts";
