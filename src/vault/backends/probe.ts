import { timingSafeEqual } from "node:crypto";
import type { Random } from "../../common/random.js";
import { withTimeout } from "../../common/timeout.js";
import { type BlobBackend, describeFailure } from "./blob-backend.js";

export type ProbeResult = { ok: true; ms: number } | { ok: false; ms: number; reason: string };

/**
 * Whether a backend really works here: write, read back, compare, delete a throwaway blob, all within
 * `timeoutMs`. Presence of a tool proves nothing (`secret-tool` exists on hosts with no Secret Service).
 */
export async function probeBackend(
  backend: BlobBackend,
  random: Random,
  timeoutMs: number,
  now: () => number = () => performance.now(),
): Promise<ProbeResult> {
  const started = now();
  const id = `pr_${random.bytes(16).toString("hex")}`;
  const data = random.bytes(32);
  const work = (async () => {
    await backend.put(id, data);
    const back = await backend.get(id);
    if (back === undefined || back.length !== data.length || !timingSafeEqual(back, data))
      throw new Error("the store returned different bytes than were written");
    await backend.delete(id);
  })();
  try {
    await withTimeout(work, timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
    return { ok: true, ms: Math.round(now() - started) };
  } catch (err) {
    // A late or partial write is removed in the background once the store answers, if it ever does.
    work.catch(() => {}).finally(() => backend.delete(id).catch(() => {}));
    return { ok: false, ms: Math.round(now() - started), reason: describeFailure(err) };
  }
}
