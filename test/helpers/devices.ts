import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeviceIdentity } from "../../src/identity/device-identity.js";
import { openFilesystemSecretStore } from "../../src/identity/filesystem-secret-store.js";
import { type DeviceCredentials, loadDeviceCredentials } from "../../src/pairing/device-store.js";
import { recordedOutput, runCli, spawnCli, startPair, testEnv } from "./cli.js";

/** Mints a pairing code through the CLI (`pairing code --json`) and returns its JSON. */
export async function mintCode(
  gatewayRoot: string,
  method: "pin" | "qr" = "pin",
  clientKind = "node",
): Promise<{ code_id: string; typed?: string; pin?: string; qr_uri?: string }> {
  const result = await runCli([
    "pairing",
    "code",
    "--method",
    method,
    "--client-kind",
    clientKind,
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Pairs a node (or a device of another kind) with `palyra pair`, approves it, and reads back what it stored. */
export async function pairNodeViaCli(
  gatewayRoot: string,
  nodeAddress: string,
  deviceRoot: string,
  clientKind = "node",
): Promise<{ deviceId: string; creds: DeviceCredentials }> {
  const code = await mintCode(gatewayRoot, "pin", clientKind);
  const pair = startPair(
    ["--gateway", nodeAddress, "--code", code.typed!, "--client-kind", clientKind],
    deviceRoot,
  );
  assert.equal(
    (await runCli(["pairing", "approve", await pair.requestId, "--state-root", gatewayRoot])).code,
    0,
  );
  assert.equal((await pair.exit).code, 0);
  const store = await openFilesystemSecretStore(join(deviceRoot, "device", "secrets"), { env: testEnv() });
  try {
    return {
      deviceId: (await DeviceIdentity.load(store))!.deviceId,
      creds: (await loadDeviceCredentials(store))!,
    };
  } finally {
    store.close();
  }
}

const SLOW_CAPABILITIES = fileURLToPath(new URL("../fixtures/slow-capabilities.mjs", import.meta.url));

/**
 * `palyra node run` pairing with `code` through `gateway` (one address, or a failover list), local
 * consent denied, serving the test capabilities of test/fixtures/slow-capabilities.mjs (`test.sleep`).
 */
export function spawnTestNode(gateway: string, code: string, stateRoot: string, env = testEnv()) {
  return spawnCli(
    [
      "node",
      "run",
      "--gateway",
      gateway,
      "--code",
      code,
      "--mediation",
      "deny",
      "--capability-module",
      SLOW_CAPABILITIES,
      "--state-root",
      stateRoot,
    ],
    env,
  );
}

/**
 * Resolves when the stream's output from now on matches (with `fromStart`, its whole output since the
 * process was spawned by spawnCli: for a line that may already have been printed); rejects on timeout
 * or (if given) when the process exits first.
 */
export function waitForOutput(
  stream: NodeJS.ReadableStream,
  pattern: RegExp,
  options: { exited?: Promise<unknown>; ms?: number; fromStart?: boolean } = {},
): Promise<RegExpExecArray> {
  let seen = options.fromStart ? (recordedOutput(stream) ?? "") : "";
  const already = options.fromStart ? pattern.exec(seen) : null;
  if (already) return Promise.resolve(already);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}: ${seen}`)),
      options.ms ?? 30_000,
    );
    const onData = (d: Buffer) => {
      seen += d;
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        stream.off("data", onData);
        resolve(match);
      }
    };
    stream.on("data", onData);
    options.exited?.then(() => reject(new Error(`process exited before ${pattern}: ${seen}`)));
  });
}

/** Pairs a `cli` device with `palyra pair`, approves it with `role` (through the token), and returns its id. */
export async function pairCliDevice(
  gatewayRoot: string,
  nodeAddress: string,
  deviceRoot: string,
  options: { role?: string; name?: string } = {},
): Promise<string> {
  const code = await mintCode(gatewayRoot, "pin", "cli");
  const pair = startPair(
    [
      "--gateway",
      nodeAddress,
      "--code",
      code.typed!,
      "--client-kind",
      "cli",
      ...(options.name ? ["--name", options.name] : []),
    ],
    deviceRoot,
  );
  const approve = await runCli([
    "pairing",
    "approve",
    await pair.requestId,
    ...(options.role ? ["--role", options.role] : []),
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(approve.code, 0, approve.stderr);
  const done = await pair.exit;
  assert.equal(done.code, 0, done.stderr);
  return /device id\s+([0-9A-Z]{26})/.exec(done.stdout)![1]!;
}

/** The device credentials stored under a device's state root. */
export async function storedCredentials(deviceRoot: string): Promise<DeviceCredentials> {
  const store = await openFilesystemSecretStore(join(deviceRoot, "device", "secrets"), { env: testEnv() });
  try {
    return (await loadDeviceCredentials(store))!;
  } finally {
    store.close();
  }
}
