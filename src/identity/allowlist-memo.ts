import type { PairedDevice } from "./device-records.js";

/** The memo hands the same record to every caller: none of them may change it. */
export function frozenCopy(device: PairedDevice): PairedDevice {
  const copy: PairedDevice = { ...device, current: Object.freeze({ ...device.current }) };
  if (device.previous) copy.previous = Object.freeze({ ...device.previous });
  return Object.freeze(copy);
}

/** Accepted certificates kept at most (a fleet's worth); the oldest entry goes first. */
const MEMO_ENTRIES = 16_384;

/**
 * Devices the allowlist accepted, by certificate fingerprint. An entry is good only while no change to
 * any registry in the process started since it was made: every write to the device tables (pairing,
 * rotation, recovery, revocation, removal, pruning) moves one process-wide generation when it starts
 * and again when it has finished, and a lookup that began before a change, or while one ran, is not
 * remembered. So once `revoke` (or a rotation, recovery, removal) resolves, the very next check of any
 * registry reads the database, even a registry over another wrapper of the same store. Only
 * acceptances are kept, never the time: `decide` applies expiry and the rotation overlap on every
 * check. Writes that bypass DeviceRegistry are not seen; only the daemon writes the device tables,
 * through it.
 */
export class AllowlistMemo {
  static #generation = 0;
  static #changing = 0;

  /** Runs a write to the device tables; every memo forgets what it held before the write. */
  static async change<T>(write: () => Promise<T>): Promise<T> {
    AllowlistMemo.#generation++;
    AllowlistMemo.#changing++;
    try {
      return await write();
    } finally {
      AllowlistMemo.#changing--;
      AllowlistMemo.#generation++;
    }
  }

  /** A change made elsewhere (another gateway on the shared database): every memo forgets. */
  static invalidate(): void {
    AllowlistMemo.#generation++;
  }

  readonly #devices = new Map<string, { device: PairedDevice; generation: number }>();

  /** A lookup remembers its answer only if this did not move meanwhile. */
  get generation(): number {
    return AllowlistMemo.#generation;
  }

  get(fingerprint: string): PairedDevice | undefined {
    const entry = this.#devices.get(fingerprint);
    if (entry === undefined) return undefined;
    if (entry.generation === AllowlistMemo.#generation) return entry.device;
    this.#devices.delete(fingerprint);
    return undefined;
  }

  remember(fingerprint: string, device: PairedDevice, generation: number): void {
    if (generation !== AllowlistMemo.#generation || AllowlistMemo.#changing > 0) return;
    if (this.#devices.size >= MEMO_ENTRIES) {
      const oldest = this.#devices.keys().next();
      if (!oldest.done) this.#devices.delete(oldest.value);
    }
    this.#devices.delete(fingerprint);
    this.#devices.set(fingerprint, { device, generation });
  }
}
