import { existsSync } from "node:fs";
import { readFileLimited, writeFileAtomic } from "../common/atomic-file.js";
import type { Clock } from "../common/clock.js";
import { isCanonicalId, newId } from "../common/ids.js";
import type { Random } from "../common/random.js";
import { DaemonError } from "./errors.js";

/**
 * This gateway's name among the gateways on a shared database, kept in its state root so it survives
 * restarts: the rows of the calls it holds carry it, and only it fails them when it restarts.
 */
export function loadOrCreateGatewayId(path: string, clock: Clock, random: Random): string {
  if (existsSync(path)) {
    const id = readFileLimited(path, 64).toString("utf8").trim();
    if (!isCanonicalId(id))
      throw new DaemonError(
        "invalid_config",
        `${path} does not hold a gateway id (a ULID); remove it to make a new one`,
      );
    return id;
  }
  const id = newId(clock, random);
  writeFileAtomic(path, `${id}\n`, 0o644);
  return id;
}
