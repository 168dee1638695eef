import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

// Per-process key: hashing both sides first makes the comparison take the same time whatever the
// lengths, and timingSafeEqual then only ever sees equal-length inputs.
const COMPARE_KEY = randomBytes(32);

/** Constant-time equality for secrets (PINs, tokens, MACs) of any length. */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const da = createHmac("sha256", COMPARE_KEY).update(a).digest();
  const db = createHmac("sha256", COMPARE_KEY).update(b).digest();
  return timingSafeEqual(da, db);
}
