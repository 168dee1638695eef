import { createHash, randomBytes } from "node:crypto";

/** Randomness is injected so tests can be deterministic; production uses the CSPRNG. */
export interface Random {
  bytes(length: number): Buffer;
}

export const systemRandom: Random = Object.freeze({ bytes: (length: number) => randomBytes(length) });

/**
 * Deterministic byte stream (SHA-256 in counter mode over a seed). For tests only: never use it to
 * make keys that protect anything.
 */
export class SeededRandom implements Random {
  readonly #seed: Buffer;
  #counter = 0n;
  #pool = Buffer.alloc(0);
  constructor(seed: string | Uint8Array) {
    this.#seed = Buffer.from(seed);
  }
  bytes(length: number): Buffer {
    while (this.#pool.length < length) {
      const block = Buffer.alloc(8);
      block.writeBigUInt64BE(this.#counter++);
      this.#pool = Buffer.concat([
        this.#pool,
        createHash("sha256").update(this.#seed).update(block).digest(),
      ]);
    }
    const out = this.#pool.subarray(0, length);
    this.#pool = this.#pool.subarray(length);
    return Buffer.from(out);
  }
}

/** Uniform integer in [0, bound) by rejection sampling (no modulo bias). */
export function randomInt(random: Random, bound: number): number {
  if (!Number.isSafeInteger(bound) || bound <= 0 || bound > 2 ** 32)
    throw new RangeError("bound out of range");
  const limit = 2 ** 32 - (2 ** 32 % bound);
  for (;;) {
    const value = random.bytes(4).readUInt32BE(0);
    if (value < limit) return value % bound;
  }
}
