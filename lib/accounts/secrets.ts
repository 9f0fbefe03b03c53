/**
 * Bearer secrets (API tokens, supervisor tokens): 128 random bytes in base64, as Treadmill's
 * tokens, stored only as their SHA-256 so a database dump reveals no usable token.
 */
import { createHash } from "node:crypto";

export function newSecretToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(128));
  return btoa(String.fromCharCode(...bytes));
}

export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
