import { pbkdf2Sync } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { systemRandom } from "../src/common/random.js";
import {
  computeVerifier,
  deriveSpakeSecrets,
  proverFinish,
  proverStart,
  verifierRespond,
  verifyConfirmation,
} from "../src/crypto/spake2plus.js";
import { type BenchResult, measure, opsResult } from "./harness.js";

const SUITE = "spake2plus";

/**
 * SPAKE2+ (RFC 9383, P-256) as pairing runs it, against the raw @noble/curves P-256 scalar multiplication
 * rate measured in the same run. An exchange costs 4 fixed-base (P, M, N) and 4 variable-base
 * multiplications across both sides; the ratio shows how many raw variable-base multiplications one
 * full exchange is worth. PBKDF2 at the PIN cost (100 000 iterations) is what a device pays once per
 * pairing, and dominates the device side.
 */
export async function run(): Promise<BenchResult[]> {
  const { w0, w1 } = deriveSpakeSecrets("482193", Buffer.alloc(16, 7), 1);
  const verifier = computeVerifier(w0, w1);
  const identities = {
    context: Buffer.concat([Buffer.from("palyra-pairing-v1"), systemRandom.bytes(96)]),
    idProver: "01JD7Z4Q9V8K3M2N1P0R5S6T7W",
    idVerifier: `palyra-gateway:${"ab".repeat(32)}`,
  };

  const full = await measure(
    () => {
      const start = proverStart(w0, systemRandom);
      const ver = verifierRespond(verifier, start.shareP, identities, systemRandom);
      const pro = proverFinish({ w0, w1, ...start }, ver.shareV, identities);
      if (
        !verifyConfirmation(pro.expectedConfirmV, ver.confirmV) ||
        !verifyConfirmation(ver.expectedConfirmP, pro.confirmP)
      )
        throw new Error("confirmation mismatch in the benchmark");
    },
    { warmupMs: 300, durationMs: 3_000 },
  );

  const shareP = proverStart(w0, systemRandom).shareP;
  const verifierSide = await measure(
    () => {
      const ver = verifierRespond(verifier, shareP, identities, systemRandom);
      verifyConfirmation(ver.expectedConfirmP, ver.confirmV);
    },
    { warmupMs: 300, durationMs: 2_000 },
  );

  // Variable-base multiplication by a fresh secret scalar: what Z and V cost (no precomputed table).
  const base = p256.Point.BASE.multiply(0x1234567n);
  let k = 0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefn;
  const raw = await measure(
    () => {
      k = (k * 6364136223846793005n + 1442695040888963407n) % p256.Point.Fn.ORDER || 1n;
      return base.multiply(k);
    },
    { warmupMs: 300, durationMs: 2_000 },
  );

  const salt = systemRandom.bytes(16);
  const pbkdf = await measure(() => pbkdf2Sync("00000000482193", salt, 100_000, 80, "sha256"), {
    warmupMs: 200,
    durationMs: 2_000,
    minIterations: 5,
  });

  return [
    opsResult(SUITE, "full exchanges (start + respond + finish + both confirmations, no PBKDF)", full),
    opsResult(SUITE, "verifier side (verifierRespond + confirmation check)", verifierSide),
    opsResult(SUITE, "raw P-256 variable-base scalar multiplications (@noble/curves)", raw),
    opsResult(SUITE, "PBKDF2-SHA256 at 100 000 iterations, 80 bytes (node:crypto)", pbkdf),
    {
      suite: SUITE,
      name: "raw scalar multiplications per full exchange",
      value: raw.opsPerSec / full.opsPerSec,
      unit: "x",
    },
  ];
}
