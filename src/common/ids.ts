import { ulid } from "ulid";
import type { Clock } from "./clock.js";
import { CommonError } from "./errors.js";
import type { Random } from "./random.js";

/** Canonical ULID: 26 upper-case Crockford base32 characters (no I, L, O, U). */
const CANONICAL_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function newId(clock: Clock, random: Random): string {
  // ulid draws one float per character; byte/256 maps to 0..31 uniformly after its floor(x*32).
  return ulid(clock.now(), () => (random.bytes(1)[0] as number) / 256);
}

export function isCanonicalId(value: unknown): value is string {
  // The first character must be 0-7, or the 48-bit timestamp overflows.
  return typeof value === "string" && CANONICAL_ID.test(value) && value.charCodeAt(0) <= 0x37;
}

export function assertCanonicalId(value: unknown, what = "id"): string {
  if (!isCanonicalId(value)) throw new CommonError("invalid_input", `${what} must be a canonical ULID`);
  return value;
}
