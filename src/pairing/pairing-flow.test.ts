import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { systemRandom } from "../common/random.js";
import { CertificateAuthority } from "../identity/ca.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { openGatewayStore, type SqliteGatewayStore } from "../store/gateway-store.js";
import { DevicePairingClient, type PairingTransport } from "./device-client.js";
import { createPairingServices, type PairingServices } from "./pairing-services.js";
import { parseQrUri } from "./qr-uri.js";

const root = mkdtempSync(join(tmpdir(), "palyra-pairing-"));
after(() => rmSync(root, { recursive: true, force: true }));

// PBKDF cost is not what these tests exercise; keep them fast.
(limits as { pinPbkdfIterations: number }).pinPbkdfIterations = 1000;

interface Gateway extends PairingServices {
  store: SqliteGatewayStore;
  ca: CertificateAuthority;
}

function gatewayAt(dbPath: string, ca: CertificateAuthority, clock: ManualClock): Gateway {
  const store = openGatewayStore(dbPath, clock, systemRandom);
  const { registry, codes, approvals, service } = createPairingServices({
    store,
    ca,
    clock,
    random: systemRandom,
  });
  return { store, codes, approvals, service, registry, ca };
}

/** Calls the real gateway service in-process, as the gRPC adapter does over the wire. */
function inProcess(gw: Gateway, source = "127.0.0.1"): PairingTransport {
  return {
    begin: (input) => gw.service.begin(input, source),
    exchange: (input) => gw.service.exchange(input),
    complete: (input) => gw.service.complete(input),
    status: (input) => gw.service.status(input),
  };
}

async function setup(name: string) {
  const clock = new ManualClock(Date.now());
  const ca = await CertificateAuthority.create({ clock, random: systemRandom });
  const gw = gatewayAt(join(root, `${name}.db`), ca, clock);
  return { clock, ca, gw };
}

function device(gw: Gateway, clock: ManualClock) {
  const identity = DeviceIdentity.generate(clock, systemRandom);
  return { identity, client: new DevicePairingClient(inProcess(gw), identity, clock, systemRandom) };
}

const attempt = { clientKind: "node", deviceName: "worker-1", platform: "linux" };

test("PIN pairing reaches completed after approval; the certificate is for the device's own CSR key", async () => {
  const { clock, gw } = await setup("pin");
  const minted = await gw.codes.mint({ method: "pin" });
  assert.match(minted.pin ?? "", /^[0-9]{6}$/);
  const { identity, client } = device(gw, clock);
  const pending = await client.pair({ ...attempt, codeId: minted.code_id, secret: minted.pin! });
  assert.match(pending.comparisonCode, /^[0-9]{6}$/);
  const listed = await gw.approvals.list();
  assert.equal(listed[0]?.state, "pending_approval");
  assert.equal(listed[0]?.comparison_code, pending.comparisonCode);
  assert.equal(listed[0]?.identity_fingerprint, identity.fingerprint);

  const decided = client.waitForDecision(pending);
  await gw.approvals.approve(pending.requestId, { actor: "admin", reason: "checked the comparison code" });
  const material = await decided;
  assert.equal(material.state, "completed");
  const cert = new X509Certificate(material.clientCertPem!);
  assert.ok(cert.verify(new X509Certificate(material.caCertPem!).publicKey));
  const csrKey = pending.keyPair.publicKey.export({ type: "spki", format: "der" });
  assert.deepEqual(cert.publicKey.export({ type: "spki", format: "der" }), csrKey);
  const decision = await gw.registry.authorizePeer(cert.raw);
  assert.equal(decision.ok && decision.device.deviceId, identity.deviceId);
  assert.equal((await gw.codes.list())[0]?.state, "used");

  const kinds = (await gw.store.audit.recent()).map((r) => r.kind).reverse();
  for (const kind of [
    "pairing.code_minted",
    "pairing.begin",
    "pairing.complete",
    "device.paired",
    "pairing.approved",
    "pairing.completed",
  ])
    assert.ok(kinds.includes(kind), `${kind} audited: ${kinds}`);
  const approval = (await gw.store.audit.recent()).find((r) => r.kind === "pairing.approved");
  assert.equal(approval?.detail?.reason, "checked the comparison code", "the approval's reason is recorded");
});

test("QR pairing pins the CA; a gateway with another CA is refused before the exchange", async () => {
  const { clock, gw } = await setup("qr");
  const minted = await gw.codes.mint({ method: "qr", gateway: "127.0.0.1:7444" });
  const qr = parseQrUri(minted.qr_uri!);
  const { client } = device(gw, clock);
  const pending = await client.pair({
    ...attempt,
    codeId: qr.codeId,
    secret: qr.secret,
    caPin: qr.caSpkiSha256,
  });
  await gw.approvals.approve(pending.requestId, { actor: "admin" });
  assert.equal((await client.waitForDecision(pending)).state, "completed");

  const other = await setup("qr-other");
  const minted2 = await other.gw.codes.mint({ method: "qr", gateway: "127.0.0.1:7444" });
  const qr2 = parseQrUri(minted2.qr_uri!);
  const { client: victim } = device(other.gw, clock);
  await assert.rejects(
    victim.pair({ ...attempt, codeId: qr2.codeId, secret: qr2.secret, caPin: qr.caSpkiSha256 }),
    { code: "gateway_unverified", message: /does not match the QR code's pin/ },
  );
});

test("a wrong PIN fails on the device before Complete; five wrong attempts kill the code, across a restart", async () => {
  const { clock, ca, gw } = await setup("wrong");
  const minted = await gw.codes.mint({ method: "pin" });
  const wrong = minted.pin === "111112" ? "111113" : "111112";
  // The device detects the wrong PIN itself (confirm_v mismatch) and stops; an attacker who sends
  // confirm_p anyway burns an attempt. Drive the gateway directly to count attempts.
  const { client } = device(gw, clock);
  await assert.rejects(client.pair({ ...attempt, codeId: minted.code_id, secret: wrong }), {
    code: "gateway_unverified",
    message: /could not prove it knows the code/,
  });
  // That abandoned exchange already counted as attempt 1.
  const attacker = DeviceIdentity.generate(clock, systemRandom);
  const { deriveSpakeSecrets, proverStart, proverFinish } = await import("../crypto/spake2plus.js");
  const { pairingContext, verifierIdentity } = await import("./transcript.js");
  let current = gw;
  for (let i = 0; i < 4; i++) {
    if (i === 2) {
      current.store.close();
      current = gatewayAt(join(root, "wrong.db"), ca, clock); // restart: attempts are persisted
    }
    const begun = await current.service.begin(
      {
        version: "palyra-pairing-v1",
        clientKind: "node",
        codeId: minted.code_id,
        deviceId: attacker.deviceId,
      },
      "10.0.0.9",
    );
    const { w0, w1 } = deriveSpakeSecrets(wrong, begun.salt, begun.iterations);
    const start = proverStart(w0, systemRandom);
    const ex = await current.service.exchange({ sessionId: begun.sessionId, shareP: start.shareP });
    const ids = {
      context: pairingContext({ ...begun, clientKind: "node", codeId: minted.code_id }),
      idProver: attacker.deviceId,
      idVerifier: verifierIdentity(ca.spkiFingerprint),
    };
    const fin = proverFinish({ w0, w1, x: start.x, shareP: start.shareP }, ex.shareV, ids);
    await assert.rejects(
      current.service.complete({
        sessionId: begun.sessionId,
        confirmP: fin.confirmP,
        identityPublic: attacker.publicKey,
        csrDer: Buffer.alloc(10),
        deviceName: "x",
        platform: "y",
        signature: Buffer.alloc(64),
      }),
      { code: "confirmation_failed" },
    );
  }
  assert.equal((await current.codes.list())[0]?.state, "exhausted");
  const { client: honest } = device(current, clock);
  await assert.rejects(honest.pair({ ...attempt, codeId: minted.code_id, secret: minted.pin! }), {
    code: "code_invalid",
    message: /pairing code is not valid/,
  });
  const kinds = (await current.store.audit.recent()).map((r) => r.kind);
  assert.equal(kinds.filter((k) => k === "pairing.exchange").length, 5);
  assert.equal(kinds.filter((k) => k === "pairing.failed_attempt").length, 3);
  assert.equal(kinds.filter((k) => k === "pairing.code_exhausted").length, 1);
});

test("unknown, expired and used codes give the same answer", async () => {
  const { gw, clock } = await setup("same");
  const begin = (codeId: string) =>
    gw.service.begin(
      {
        version: "palyra-pairing-v1",
        clientKind: "node",
        codeId,
        deviceId: DeviceIdentity.generate(clock, systemRandom).deviceId,
      },
      "127.0.0.2",
    );
  const expired = await gw.codes.mint({ method: "pin", ttlMs: limits.pairingCodeMinTtlMs });
  clock.advance(limits.pairingCodeMinTtlMs);
  const messages = new Set<string>();
  for (const codeId of ["ZZZZ", expired.code_id]) {
    const err = await begin(codeId).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    messages.add(`${(err as { code?: string }).code}:${err.message}`);
  }
  assert.deepEqual([...messages], ["code_invalid:pairing code is not valid"]);
});

test("begin is rate limited per source address", async () => {
  const { gw, clock } = await setup("rate");
  const minted = await gw.codes.mint({ method: "pin" });
  const codes: string[] = [];
  for (let i = 0; i < limits.beginPerAddressPerWindow; i++) {
    const err = await gw.service
      .begin(
        {
          version: "palyra-pairing-v1",
          clientKind: "node",
          codeId: "ZZZZ",
          deviceId: DeviceIdentity.generate(clock, systemRandom).deviceId,
        },
        "192.0.2.1",
      )
      .catch((e: { code: string }) => e.code);
    codes.push(String(err));
  }
  assert.ok(codes.every((c) => c === "code_invalid"));
  await assert.rejects(
    gw.service.begin(
      {
        version: "palyra-pairing-v1",
        clientKind: "node",
        codeId: minted.code_id,
        deviceId: DeviceIdentity.generate(clock, systemRandom).deviceId,
      },
      "192.0.2.1",
    ),
    { code: "rate_limited" },
  );
});

test("approving twice, after reject, or after expiry fails with a clear error", async () => {
  const { gw, clock } = await setup("decide");
  const pendingFor = async () => {
    const minted = await gw.codes.mint({ method: "pin" });
    const { client } = device(gw, clock);
    return client.pair({ ...attempt, codeId: minted.code_id, secret: minted.pin! });
  };
  const a = await pendingFor();
  await gw.approvals.approve(a.requestId, { actor: "admin" });
  await assert.rejects(gw.approvals.approve(a.requestId, { actor: "admin" }), {
    code: "already_decided",
    message: /already decided \(approved\)/,
  });
  const b = await pendingFor();
  await gw.approvals.reject(b.requestId, { actor: "admin", reason: "not mine" });
  await assert.rejects(gw.approvals.approve(b.requestId, { actor: "admin" }), { code: "already_decided" });
  const c = await pendingFor();
  clock.advance(limits.pairingRequestTtlMs);
  await assert.rejects(gw.approvals.approve(c.requestId, { actor: "admin" }), {
    code: "request_expired",
    message: /has expired/,
  });
  await assert.rejects(gw.approvals.approve("01ARZ3NDEKTSV4RRFFQ69G5FAV", { actor: "admin" }), {
    code: "request_not_found",
  });
});

test("no PIN or QR secret reaches the database file", async () => {
  const { gw, clock } = await setup("secrets");
  const pin = await gw.codes.mint({ method: "pin" });
  const qr = await gw.codes.mint({ method: "qr", gateway: "127.0.0.1:7444" });
  const { client } = device(gw, clock);
  const pending = await client.pair({ ...attempt, codeId: pin.code_id, secret: pin.pin! });
  await gw.approvals.approve(pending.requestId, { actor: "admin" });
  gw.store.db.pragma("wal_checkpoint(TRUNCATE)");
  const db = readFileSync(join(root, "secrets.db"));
  const secret = parseQrUri(qr.qr_uri!).secret;
  for (const needle of [pin.pin!, pin.typed!, secret, Buffer.from(secret, "base64url").toString("hex")])
    assert.equal(db.includes(Buffer.from(needle)), false, `database contains ${needle.length}-char secret`);
  assert.equal(JSON.stringify(await gw.codes.list()).includes(pin.pin!), false);
});

test("a bare PIN works when exactly one PIN code is live, and not when two are", async () => {
  const { gw, clock } = await setup("bare");
  const only = await gw.codes.mint({ method: "pin" });
  const { client } = device(gw, clock);
  const pending = await client.pair({ ...attempt, codeId: "", secret: only.pin! });
  assert.match(pending.requestId, /^[0-9A-Z]{26}$/);
  const a = await gw.codes.mint({ method: "pin" });
  await gw.codes.mint({ method: "pin" });
  const { client: second } = device(gw, clock);
  await assert.rejects(second.pair({ ...attempt, codeId: "", secret: a.pin! }), { code: "code_invalid" });
});

test("a status poll cut by a dropped connection (e.g. the gateway's anonymous age limit) is retried; other failures are not", async () => {
  const { gw, clock } = await setup("retry");
  const minted = await gw.codes.mint({ method: "pin" });
  const identity = DeviceIdentity.generate(clock, systemRandom);
  const dropped = new Error("connection dropped");
  let drops = 1;
  const transport: PairingTransport = {
    ...inProcess(gw),
    status: (input) => (drops-- > 0 ? Promise.reject(dropped) : gw.service.status(input)),
    isTransient: (err) => err === dropped,
  };
  const client = new DevicePairingClient(transport, identity, clock, systemRandom);
  const pending = await client.pair({ ...attempt, codeId: minted.code_id, secret: minted.pin! });
  await gw.approvals.approve(pending.requestId, { actor: "admin" });
  assert.equal((await client.waitForDecision(pending)).state, "completed");
  assert.equal(drops, -1, "the dropped poll was made again");

  const broken = new DevicePairingClient(
    { ...transport, status: () => Promise.reject(new Error("refused")) },
    identity,
    clock,
    systemRandom,
  );
  await assert.rejects(broken.waitForDecision(pending), /refused/);
});
