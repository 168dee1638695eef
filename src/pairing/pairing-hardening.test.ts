import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SeededRandom, systemRandom } from "../common/random.js";
import { deriveSpakeSecrets, proverFinish, proverStart } from "../crypto/spake2plus.js";
import { CertificateAuthority } from "../identity/ca.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";
import { DeviceIdentity } from "../identity/device-identity.js";
import { openGatewayStore } from "../store/gateway-store.js";
import { spakePassword } from "./code-service.js";
import { DevicePairingClient, type PairingTransport } from "./device-client.js";
import { createPairingServices } from "./pairing-services.js";
import { completionMessage, pairingContext, verifierIdentity } from "./transcript.js";

// Issue 12 findings 1 (code squatting), 2 (small-order identity keys) and 8 (kind mismatch), driven
// against the real gateway service in-process. PBKDF cost is not what these tests exercise.
(limits as { pinPbkdfIterations: number }).pinPbkdfIterations = 1000;

async function world() {
  const clock = new ManualClock(Date.now());
  const ca = await CertificateAuthority.create({ clock, random: systemRandom });
  const store = openGatewayStore(":memory:", clock, systemRandom);
  const services = createPairingServices({ store, ca, clock, random: systemRandom });
  return { clock, ca, store, ...services };
}
type World = Awaited<ReturnType<typeof world>>;

function transport(w: World, source: string): PairingTransport {
  return {
    begin: (i) => w.service.begin(i, source),
    exchange: (i) => w.service.exchange(i),
    complete: (i) => w.service.complete(i),
    status: (i) => w.service.status(i),
  };
}

const begin = (w: World, codeId: string, source: string, clientKind = "node") =>
  w.service.begin(
    {
      version: "palyra-pairing-v1",
      clientKind,
      codeId,
      deviceId: DeviceIdentity.generate(w.clock, systemRandom).deviceId,
    },
    source,
  );

let nextSource = 0;
/** Runs Begin and Exchange as a device would, with `secret` as the guess; returns what Complete needs. */
async function exchangeWith(w: World, codeId: string, secret: string, deviceId: string, clientKind = "node") {
  const begun = await w.service.begin(
    { version: "palyra-pairing-v1", clientKind, codeId, deviceId },
    `192.0.2.${++nextSource}`,
  );
  const { w0, w1 } = deriveSpakeSecrets(spakePassword(secret), begun.salt, begun.iterations);
  const start = proverStart(w0, systemRandom);
  const ex = await w.service.exchange({ sessionId: begun.sessionId, shareP: start.shareP });
  const fin = proverFinish({ w0, w1, x: start.x, shareP: start.shareP }, ex.shareV, {
    context: pairingContext({ ...begun, clientKind, codeId }),
    idProver: Buffer.from(deviceId),
    idVerifier: verifierIdentity(w.ca.spkiFingerprint),
  });
  return { begun, fin };
}

test("finding 1: sessions held by peers without the code (empty id, known id) cannot stop the device", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  // Squatters from many addresses: a bare-PIN Begin (empty code id names the only live PIN code) and
  // Begins naming the code id, more than the per-code bound, none of them ever exchanging.
  for (let i = 0; i < limits.pairingSessionsPerCode + 20; i++)
    await begin(w, i % 2 === 0 ? "" : minted.code_id, `198.51.100.${i % 250}`);
  assert.equal(w.service.liveSessions(), limits.pairingSessionsPerCode, "sessions per code are bounded");
  const identity = DeviceIdentity.generate(w.clock, systemRandom);
  const client = new DevicePairingClient(transport(w, "192.0.2.10"), identity, w.clock, systemRandom);
  const pending = await client.pair({
    codeId: minted.code_id,
    secret: minted.pin!,
    clientKind: "node",
    deviceName: "worker",
    platform: "linux",
  });
  assert.match(pending.comparisonCode, /^[0-9]{6}$/);
  assert.equal((await w.approvals.list())[0]?.state, "pending_approval");
  assert.equal((await w.codes.list())[0]?.state, "used");
  assert.equal((await w.codes.list())[0]?.failed_attempts, 0, "Begins alone cost no attempt");
  assert.equal(w.service.liveSessions(), 0, "a used code ends every session on it");
});

test("finding 1: a relay in the middle holding sessions cannot lock the code either", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  // A relay that opens its own session for the code id it saw, then sits on it.
  await begin(w, minted.code_id, "203.0.113.9");
  await begin(w, "", "203.0.113.9");
  const client = new DevicePairingClient(
    transport(w, "192.0.2.11"),
    DeviceIdentity.generate(w.clock, systemRandom),
    w.clock,
    systemRandom,
  );
  const pending = await client.pair({
    codeId: "",
    secret: minted.pin!,
    clientKind: "node",
    deviceName: "worker",
    platform: "linux",
  });
  assert.match(pending.requestId, /^[0-9A-Z]{26}$/);
});

test("finding 1 property: however sessions interleave, at most max_attempts guesses run per code", async () => {
  const random = new SeededRandom("squat-property");
  for (let trial = 0; trial < 12; trial++) {
    const w = await world();
    const maxAttempts = 1 + (random.bytes(1)[0]! % 6);
    const minted = await w.codes.mint({ method: "pin", maxAttempts });
    const wrong = minted.pin === "111112" ? "111113" : "111112";
    const sessions = 2 + (random.bytes(1)[0]! % 14);
    // Open all sessions first (every one begun while the code is live), then exchange them in a random
    // order, some completing with a wrong proof, some walking away.
    const open: Array<{
      codeId: string;
      deviceId: string;
      sessionId: string;
      salt: Buffer;
      iterations: number;
      challenge: Buffer;
      caCertDer: Buffer;
    }> = [];
    for (let i = 0; i < sessions; i++) {
      const deviceId = DeviceIdentity.generate(w.clock, systemRandom).deviceId;
      const codeId = random.bytes(1)[0]! % 2 === 0 ? "" : minted.code_id;
      const begun = await w.service.begin(
        { version: "palyra-pairing-v1", clientKind: "node", codeId, deviceId },
        `10.1.${trial}.${i}`,
      );
      open.push({ ...begun, codeId, deviceId });
    }
    let guesses = 0;
    for (const s of open.sort(() => (random.bytes(1)[0]! % 2 === 0 ? -1 : 1))) {
      const { w0, w1 } = deriveSpakeSecrets(spakePassword(wrong), s.salt, s.iterations);
      const start = proverStart(w0, systemRandom);
      const ex = await w.service
        .exchange({ sessionId: s.sessionId, shareP: start.shareP })
        .catch(() => undefined);
      if (!ex) continue;
      guesses++;
      if (random.bytes(1)[0]! % 3 === 0) continue; // walks away: the attempt still counts
      const fin = proverFinish({ w0, w1, x: start.x, shareP: start.shareP }, ex.shareV, {
        context: pairingContext({ ...s, clientKind: "node" }),
        idProver: Buffer.from(s.deviceId),
        idVerifier: verifierIdentity(w.ca.spkiFingerprint),
      });
      await assert.rejects(
        w.service.complete({
          sessionId: s.sessionId,
          confirmP: fin.confirmP,
          identityPublic: Buffer.alloc(32),
          csrDer: Buffer.alloc(8),
          deviceName: "x",
          platform: "y",
          signature: Buffer.alloc(64),
        }),
        { code: "confirmation_failed" },
      );
    }
    assert.ok(guesses <= maxAttempts, `trial ${trial}: ${guesses} guesses against a limit of ${maxAttempts}`);
    assert.equal(
      guesses,
      Math.min(maxAttempts, sessions),
      `trial ${trial}: every attempt up to the limit ran`,
    );
    // Once the attempts are used up nobody gets another one, not even with the right PIN.
    if (sessions >= maxAttempts) {
      await assert.rejects(
        exchangeWith(w, minted.code_id, minted.pin!, DeviceIdentity.generate(w.clock, systemRandom).deviceId),
        {
          code: "code_invalid",
        },
      );
      assert.equal((await w.codes.list())[0]?.state, "exhausted");
    }
  }
});

/** The eight small-order points of edwards25519 (canonical encodings), and non-canonical encodings. */
const SMALL_ORDER = [
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];
const NON_CANONICAL = [
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1
  "0100000000000000000000000000000000000000000000000000000000000080", // x = 0 with the sign bit
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = -1 (x = 0) with the sign bit
];

test("finding 2: small-order and non-canonical identity keys are refused at Complete with INVALID_ARGUMENT", async () => {
  const w = await world();
  const { privateKey, publicKey } = generateP256KeyPair();
  const csrDer = await createCsr(privateKey, publicKey);
  for (const hex of [...SMALL_ORDER, ...NON_CANONICAL]) {
    const minted = await w.codes.mint({ method: "pin" });
    const deviceId = DeviceIdentity.generate(w.clock, systemRandom).deviceId;
    const { begun, fin } = await exchangeWith(w, minted.code_id, minted.pin!, deviceId);
    const identityPublic = Buffer.from(hex, "hex");
    // The review's forgery: with the identity point as key, R = identity and S = 0 "verify" anything.
    const signature = Buffer.concat([Buffer.from(SMALL_ORDER[0]!, "hex"), Buffer.alloc(32)]);
    assert.equal(completionMessage(fin.kMain, identityPublic, csrDer).length, 32);
    await assert.rejects(
      w.service.complete({
        sessionId: begun.sessionId,
        confirmP: fin.confirmP,
        identityPublic,
        csrDer,
        deviceName: "x",
        platform: "y",
        signature,
      }),
      { code: "invalid_input", message: /not a valid Ed25519 public key/ },
      hex,
    );
  }
  assert.equal((await w.approvals.list()).length, 0);
});

test("finding 8: a code used by the wrong client kind names the kind it was minted for, and stays usable", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin", clientKind: "node" });
  const pair = (clientKind: string) =>
    new DevicePairingClient(
      transport(w, "192.0.2.12"),
      DeviceIdentity.generate(w.clock, systemRandom),
      w.clock,
      systemRandom,
    ).pair({ codeId: minted.code_id, secret: minted.pin!, clientKind, deviceName: "d", platform: "linux" });
  await assert.rejects(pair("cli"), {
    code: "kind_mismatch",
    message: 'this pairing code was minted for client kind "node", not "cli"',
  });
  assert.equal(
    (await w.codes.list())[0]?.failed_attempts,
    0,
    "the right code with the wrong kind costs no attempt",
  );
  assert.equal((await w.codes.list())[0]?.state, "live");
  // A wrong code with the wrong kind learns nothing about the kind: it fails as any wrong code does.
  const wrong = minted.pin === "111112" ? "111113" : "111112";
  const { begun, fin } = await exchangeWith(
    w,
    minted.code_id,
    wrong,
    DeviceIdentity.generate(w.clock, systemRandom).deviceId,
    "cli",
  );
  await assert.rejects(
    w.service.complete({
      sessionId: begun.sessionId,
      confirmP: fin.confirmP,
      identityPublic: Buffer.alloc(32),
      csrDer: Buffer.alloc(8),
      deviceName: "x",
      platform: "y",
      signature: Buffer.alloc(64),
    }),
    { code: "confirmation_failed" },
  );
  // Begin answers the same for a wrong kind as for the right one (no oracle for live code ids).
  const viaCli = await begin(w, minted.code_id, "192.0.2.13", "cli");
  assert.match(viaCli.sessionId, /^[0-9A-Z]{26}$/);
  const pending = await pair("node");
  assert.match(pending.requestId, /^[0-9A-Z]{26}$/);
});

test("the device checks the shape of BeginPairing's answer before using it", async () => {
  const w = await world();
  const minted = await w.codes.mint({ method: "pin" });
  const cases: Array<[string, (b: Awaited<ReturnType<World["service"]["begin"]>>) => object, RegExp]> = [
    ["short challenge", (b) => ({ ...b, challenge: b.challenge.subarray(1) }), /challenge is not 32 bytes/],
    ["odd session id", (b) => ({ ...b, sessionId: `${b.sessionId}x` }), /session_id/],
    ["huge iteration count", (b) => ({ ...b, iterations: 2 ** 40 }), /iterations must be/],
    ["short salt", (b) => ({ ...b, salt: Buffer.alloc(4) }), /salt is not 16 bytes/],
  ];
  for (const [what, change, message] of cases) {
    const base = transport(w, "192.0.2.99");
    const client = new DevicePairingClient(
      { ...base, begin: async (i) => change(await base.begin(i)) as never },
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
        platform: "l",
      }),
      { code: "gateway_unverified", message },
      what,
    );
  }
});
