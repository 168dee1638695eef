import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { systemRandom } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { DevicePairingClient, type PairingTransport } from "./device-client.js";
import { createPairingServices } from "./pairing-services.js";

(limits as { pinPbkdfIterations: number }).pinPbkdfIterations = 1000;

async function world() {
  const clock = new ManualClock(Date.now());
  const ca = await CertificateAuthority.create({ clock, random: systemRandom });
  const attackerCa = await CertificateAuthority.create({ clock, random: systemRandom });
  const store = openGatewayStore(":memory:", clock, systemRandom);
  const { codes, approvals, service } = createPairingServices({ store, ca, clock, random: systemRandom });
  const issueServer = async (by: CertificateAuthority) => {
    const { privateKey, publicKey } = generateP256KeyPair();
    return (await by.issueServerCertificate(await createCsr(privateKey, publicKey))).der;
  };
  return { clock, ca, attackerCa, codes, approvals, service, issueServer };
}

/**
 * A proxy that terminates the device's TLS with its own certificate and relays every RPC to the real
 * gateway (modelled at the RPC layer: what the device sees is exactly what such a proxy can show it).
 */
function proxy(w: Awaited<ReturnType<typeof world>>, serverCertDer: Buffer, swapCa?: Buffer) {
  let exchanges = 0;
  let completes = 0;
  const transport: PairingTransport = {
    begin: async (i) => {
      const real = await w.service.begin(i, "203.0.113.7");
      return swapCa ? { ...real, caCertDer: swapCa } : real;
    },
    exchange: (i) => {
      exchanges++;
      return w.service.exchange(i);
    },
    complete: (i) => {
      completes++;
      return w.service.complete(i);
    },
    status: (i) => w.service.status(i),
    serverCertificate: () => serverCertDer,
  };
  return { transport, counts: () => ({ exchanges, completes }) };
}

test("MITM with its own TLS certificate, real CA relayed: the device aborts before the exchange", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  const mitm = proxy(w, await w.issueServer(w.attackerCa));
  const client = new DevicePairingClient(
    mitm.transport,
    DeviceIdentity.generate(w.clock, systemRandom),
    w.clock,
    systemRandom,
  );
  await assert.rejects(
    client.pair({
      codeId: minted.code_id,
      secret: minted.pin!,
      clientKind: "node",
      deviceName: "d",
      platform: "linux",
    }),
    { code: "gateway_unverified", message: /TLS server certificate is not from the CA the gateway sent/ },
  );
  assert.deepEqual(mitm.counts(), { exchanges: 0, completes: 0 });
});

test("MITM that substitutes its own CA during a PIN pairing: the device aborts before Complete", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  const mitm = proxy(w, await w.issueServer(w.attackerCa), w.attackerCa.certDer);
  const client = new DevicePairingClient(
    mitm.transport,
    DeviceIdentity.generate(w.clock, systemRandom),
    w.clock,
    systemRandom,
  );
  await assert.rejects(
    client.pair({
      codeId: minted.code_id,
      secret: minted.pin!,
      clientKind: "node",
      deviceName: "d",
      platform: "linux",
    }),
    {
      code: "gateway_unverified",
      message: /could not prove it knows the code: wrong code or someone in the middle/,
    },
  );
  assert.deepEqual(mitm.counts(), { exchanges: 1, completes: 0 });
  assert.deepEqual(await w.approvals.list(), [], "no pairing request was created");
});

test("without interference the same setup pairs (the checks above are not false alarms)", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  const honest = proxy(w, await w.issueServer(w.ca));
  const client = new DevicePairingClient(
    honest.transport,
    DeviceIdentity.generate(w.clock, systemRandom),
    w.clock,
    systemRandom,
  );
  const pending = await client.pair({
    codeId: minted.code_id,
    secret: minted.pin!,
    clientKind: "node",
    deviceName: "d",
    platform: "linux",
  });
  assert.equal((await w.approvals.list())[0]?.request_id, pending.requestId);
});
