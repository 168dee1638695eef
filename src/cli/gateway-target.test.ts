import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openFilesystemSecretStore } from "../identity/filesystem-secret-store.js";
import { storeDeviceCredentials } from "../pairing/device-store.js";
import {
  closeDeviceStores,
  deviceSecretsDir,
  implicitRemoteNote,
  resolveGatewayTarget,
} from "./gateway-target.js";

const root = mkdtempSync(join(tmpdir(), "palyra-target-"));
after(async () => {
  await closeDeviceStores();
  rmSync(root, { recursive: true, force: true });
});
const env = { PALYRA_STORE_PASSPHRASE: "target test" } as NodeJS.ProcessEnv;

async function paired(name: string, clientKind: string): Promise<string> {
  const stateRoot = join(root, name);
  const store = await openFilesystemSecretStore(deviceSecretsDir(stateRoot), { env });
  await storeDeviceCredentials(store, {
    clientKeyPem: "key",
    clientCertPem: "cert",
    caCertPem: "ca",
    gateway: "gw.example:7444,gw2.example:7444",
    clientKind,
  });
  store.close();
  return stateRoot;
}

test("the target: --gateway, then PALYRA_GATEWAY, then a running daemon, then the paired operator device", async () => {
  process.env.PALYRA_STORE_PASSPHRASE = env.PALYRA_STORE_PASSPHRASE;
  const laptop = await paired("laptop", "cli");
  const target = (flags: { gateway?: string }, extra: NodeJS.ProcessEnv = {}) =>
    resolveGatewayTarget({ ...flags, stateRoot: laptop }, { ...env, ...extra });

  assert.deepEqual(await target({}), {
    kind: "remote",
    stateRoot: laptop,
    address: "gw.example:7444",
    reason: "the gateway this device paired with",
  });
  assert.equal((await target({}, { PALYRA_GATEWAY: "other:1" })).kind, "remote");
  assert.equal((await target({ gateway: "third:2" }, { PALYRA_GATEWAY: "other:1" })).reason, "--gateway");
  assert.equal((await target({ gateway: "local" }, { PALYRA_GATEWAY: "other:1" })).kind, "local");
  assert.equal((await target({}, { PALYRA_GATEWAY: "local" })).kind, "local");
  await assert.rejects(target({ gateway: "a:1,b:2" }), /names one gateway/);
  await assert.rejects(target({}, { PALYRA_GATEWAY: "not an address" }), /host:port|address/);

  // A daemon on this state root wins over the paired device (the token path on the gateway's machine).
  assert.equal(implicitRemoteNote(await target({})), undefined);
  writeFileSync(join(laptop, "palyra.db"), "");
  assert.match(implicitRemoteNote(await target({}))!, /no daemon runs on .*--gateway local/);
  writeFileSync(join(laptop, "daemon.json"), "{}");
  assert.deepEqual(await target({}), {
    kind: "local",
    stateRoot: laptop,
    reason: "a daemon runs on this state root",
  });

  // A node's credentials never make a target; an empty state root is local (which then says no daemon).
  const worker = await paired("worker", "node");
  assert.equal((await resolveGatewayTarget({ stateRoot: worker }, env)).kind, "local");
  const empty = join(root, "empty");
  mkdirSync(empty);
  assert.equal((await resolveGatewayTarget({ stateRoot: empty }, env)).kind, "local");
});
