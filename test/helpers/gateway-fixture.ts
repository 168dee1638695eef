import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type DaemonProcess, startDaemon, testEnv } from "./cli.js";

/**
 * The usual setup of a test file: a temporary root, a daemon on `<root>/gw` started before its tests,
 * and both gone after them. `daemon` is the running daemon (a test may replace it). Kept apart from
 * cli.ts, which benchmarks import too: importing node:test would make them print a test report.
 */
export function gatewayFixture(prefix: string, extraArgs: string[] = [], env = testEnv()) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const fixture = { root, gatewayRoot: join(root, "gw"), daemon: undefined as unknown as DaemonProcess };
  before(async () => {
    fixture.daemon = await startDaemon(fixture.gatewayRoot, env, extraArgs);
  });
  after(async () => {
    await fixture.daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return fixture;
}
