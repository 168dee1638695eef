import assert from "node:assert/strict";
import { createHash, createHmac, hkdfSync, pbkdf2Sync, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import type { Random } from "../src/common/random.js";
import { identityFingerprint, spkiDigest } from "../src/crypto/fingerprint.js";
import {
  comparisonCode,
  computeVerifier,
  deriveSpakeSecrets,
  encodeScalar,
  proverFinish,
  proverStart,
  spake2plusInternalsForTests,
  verifierRespond,
  verifyConfirmation,
} from "../src/crypto/spake2plus.js";
import {
  encodeTranscript,
  GROUP_ORDER,
  keySchedule,
  lengthPrefix,
  M,
  N,
} from "../src/crypto/spake2plus-transcript.js";
import { PairingState } from "../src/gen/palyra/v1/common_pb.js";
import {
  GatewayMessageSchema,
  NodeMessageSchema,
  RenewCertificateRequestSchema,
} from "../src/gen/palyra/v1/node_pb.js";
import {
  BeginPairingRequestSchema,
  BeginPairingResponseSchema,
  CompletePairingRequestSchema,
  CompletePairingResponseSchema,
  ExchangePairingRequestSchema,
  ExchangePairingResponseSchema,
  GetPairingStatusRequestSchema,
  GetPairingStatusResponseSchema,
} from "../src/gen/palyra/v1/pairing_pb.js";
import { QuicRequestSchema, QuicResponseSchema } from "../src/gen/palyra/v1/quic_pb.js";
import { RecoverCertificateRequestSchema } from "../src/gen/palyra/v1/recovery_pb.js";
import { deviceUri } from "../src/identity/certificate-profiles.js";
import { parseAndVerifyCsr } from "../src/identity/csr.js";
import { isValidIdentityKey, verifyIdentitySignature } from "../src/identity/device-identity.js";
import { recoveryMessage } from "../src/identity/recovery.js";
import { certificateDeviceId, renewalMessage } from "../src/identity/rotation.js";
import { verifyIssuedBy } from "../src/identity/verify-chain.js";
import { spakePassword } from "../src/pairing/code-service.js";
import { parseTypedCode } from "../src/pairing/codes.js";
import { buildQrUri, parseQrUri } from "../src/pairing/qr-uri.js";
import {
  completionMessage,
  PROTOCOL,
  pairingContext,
  statusMessage,
  verifierIdentity,
} from "../src/pairing/transcript.js";
import { WIRE_VERSION } from "../src/transport/grpc/pairing-mapping.js";
import { FrameDecoder } from "../src/transport/quic/framing.js";
import { encodeMessage, encodeResponse } from "../src/transport/quic/messages.js";
import { identityFromSeed, readableFields } from "./helpers/protocol-vectors.js";

/**
 * docs/protocol-vectors.json, recomputed: every derived value from the file's inputs, once with the
 * implementation's functions (device side and gateway side, without PairingGatewayService) and, for the
 * SPAKE2+ core, once more straight from the formulas. Regenerate the file with
 * `node --import tsx scripts/protocol-vectors.ts`.
 */

type Hex = string;
interface Flow {
  inputs: Record<string, string | number>;
  derived: Record<string, string>;
  messages: Record<string, { fields: Record<string, string | number | boolean>; protobuf: Hex }>;
  qr_uri?: Record<string, string>;
}
interface Vectors {
  common: Record<string, string | number>;
  pin_pairing: Flow;
  qr_pairing: Flow;
  renewal: Flow;
  recovery: Flow;
  quic: Record<string, string | number>;
}

const vectors = JSON.parse(
  readFileSync(new URL("../docs/protocol-vectors.json", import.meta.url), "utf8"),
) as Vectors;
const common = vectors.common;
const bytes = (value: string | number | undefined): Buffer => {
  assert.equal(typeof value, "string");
  return Buffer.from(value as string, "hex");
};
const text = (value: string | number | undefined): string => {
  assert.equal(typeof value, "string");
  return value as string;
};
const num = (value: string | number | undefined): number => {
  assert.equal(typeof value, "number");
  return value as number;
};
const hex = (value: Uint8Array): Hex => Buffer.from(value).toString("hex");
const int = (value: Uint8Array): bigint => BigInt(`0x${hex(value)}`);
const G = p256.Point.BASE;
const n = p256.Point.Fn.ORDER;
const point = (value: Uint8Array) => p256.Point.fromBytes(value);
const mul = (P: InstanceType<typeof p256.Point>, k: bigint) => (k === 0n ? p256.Point.ZERO : P.multiply(k));
const caDer = bytes(common.ca_cert_der);

/** Hands out exactly the given chunks, in order: how the file's x and y are fed to the implementation. */
class ScriptedRandom implements Random {
  readonly #chunks: Buffer[];
  constructor(...chunks: Buffer[]) {
    this.#chunks = chunks;
  }
  bytes(length: number): Buffer {
    const next = this.#chunks.shift();
    assert.ok(next && next.length === length, "the scripted randomness does not fit the draw");
    return next;
  }
}

/** RFC 9383's 8-byte little-endian length prefix, written out by hand. */
function le64(length: number): Buffer {
  const out = Buffer.alloc(8);
  for (let i = 0, v = length; i < 8; i++, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

function hkdf(ikm: Uint8Array, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), info, length));
}

function encoded<D extends DescMessage>(schema: D, message: MessageInitShape<D>): Hex {
  return hex(toBinary(schema, create(schema, message)));
}

/** Each message's `fields` must be what its `protobuf` bytes decode to, and both what `expected` builds. */
function checkMessage<D extends DescMessage>(
  flow: Flow,
  name: string,
  schema: D,
  expected: MessageInitShape<D>,
) {
  const message = flow.messages[name];
  assert.ok(message, `message ${name} is missing`);
  assert.equal(message.protobuf, encoded(schema, expected), `${name}: protobuf encoding`);
  assert.deepEqual(readableFields(schema, bytes(message.protobuf)), message.fields, `${name}: fields`);
}

test("common values: M, N, n, and the CA's hashes", () => {
  assert.equal(text(common.protocol_text), PROTOCOL);
  assert.equal(text(common.group_order_n), GROUP_ORDER.toString(16).padStart(64, "0"));
  assert.equal(GROUP_ORDER, n);
  // M and N as RFC 9383 publishes them (compressed), and as they enter the transcript (uncompressed).
  assert.equal(hex(M.toBytes(true)), common.M_compressed);
  assert.equal(hex(N.toBytes(true)), common.N_compressed);
  assert.equal(hex(p256.Point.fromHex(text(common.M_compressed)).toBytes(false)), common.M);
  assert.equal(hex(p256.Point.fromHex(text(common.N_compressed)).toBytes(false)), common.N);
  assert.equal(hex(createHash("sha256").update(caDer).digest()), common.ca_cert_sha256);
  const ca = new X509Certificate(caDer);
  assert.ok(ca.ca);
  const spki = ca.publicKey.export({ type: "spki", format: "der" });
  assert.equal(hex(createHash("sha256").update(spki).digest()), common.ca_spki_sha256);
  assert.equal(hex(spkiDigest(ca)), common.ca_spki_sha256);
  assert.equal(bytes(common.ca_spki_sha256).toString("base64url"), common.ca_spki_sha256_base64url_text);
});

for (const name of ["pin_pairing", "qr_pairing"] as const) {
  const flow = vectors[name];
  const i = flow.inputs;
  const d = flow.derived;
  const deviceId = text(i.device_id_text);
  const clientKind = text(i.client_kind_text);
  const codeId = text(i.code_id_text);
  const sessionId = text(i.session_id_text);
  const challenge = bytes(i.challenge);
  const salt = bytes(i.salt);
  const iterations = num(i.iterations);

  test(`${name}: the code, the PBKDF2 input and w0, w1, L`, () => {
    const secret = text(i.secret_text);
    if (i.method_text === "pin") {
      assert.deepEqual(parseTypedCode(text(i.typed_code_text)), { codeId, pin: secret });
      assert.equal(iterations, 100_000);
    } else assert.equal(iterations, 1_000);
    // The password is the secret's text as UTF-8: the PIN's digits, or the QR secret's base64url text.
    const password = Buffer.from(secret, "utf8");
    assert.equal(hex(spakePassword(secret)), d.password);
    assert.equal(hex(password), d.password);
    const input = Buffer.concat([le64(password.length), password]);
    assert.deepEqual(input, Buffer.concat([lengthPrefix(password.length), password]));
    assert.equal(hex(input), d.pbkdf_input);
    const out = pbkdf2Sync(input, salt, iterations, 80, "sha256");
    assert.equal(hex(out), d.pbkdf_output);
    assert.equal(hex(out.subarray(0, 40)), d.w0s);
    assert.equal(hex(out.subarray(40)), d.w1s);
    const w0 = int(out.subarray(0, 40)) % n;
    const w1 = int(out.subarray(40)) % n;
    assert.equal(hex(encodeScalar(w0)), d.w0);
    assert.equal(hex(encodeScalar(w1)), d.w1);
    assert.deepEqual(deriveSpakeSecrets(password, salt, iterations), { w0, w1 });
    assert.equal(hex(G.multiply(w1).toBytes(false)), d.L);
    assert.equal(hex(computeVerifier(w0, w1).L), d.L);
  });

  test(`${name}: context, identities, shares, Z, V, TT, keys and confirmations`, () => {
    const w0 = int(bytes(d.w0));
    const w1 = int(bytes(d.w1));
    const L = bytes(d.L);

    // Context: protocol || session id || challenge || SHA-256(CA DER) || len8 kind || kind || len8 id || id.
    const context = pairingContext({ sessionId, challenge, caCertDer: caDer, clientKind, codeId });
    const byHand = Buffer.concat([
      Buffer.from("palyra-pairing-v1"),
      Buffer.from(sessionId),
      challenge,
      createHash("sha256").update(caDer).digest(),
      Buffer.of(clientKind.length),
      Buffer.from(clientKind),
      Buffer.of(codeId.length),
      Buffer.from(codeId),
    ]);
    assert.deepEqual(context, byHand);
    assert.equal(hex(context), d.context);
    assert.equal(sessionId.length, 26);
    assert.equal(challenge.length, 32);
    assert.equal(hex(Buffer.from(deviceId)), d.id_prover);
    const idVerifier = verifierIdentity(hex(spkiDigest(new X509Certificate(caDer))));
    assert.equal(idVerifier.toString(), `palyra-gateway:${common.ca_spki_sha256}`);
    assert.equal(hex(idVerifier), d.id_verifier);
    const ids = { context, idProver: Buffer.from(deviceId), idVerifier };

    // x and y: the 32 random bytes, big-endian, used as is when in [1, n-1] (they are).
    const x = int(bytes(i.x_random));
    const y = int(bytes(i.y_random));
    assert.ok(x > 0n && x < n && y > 0n && y < n);
    assert.equal(hex(encodeScalar(x)), d.x);
    assert.equal(d.y, i.y_random);

    // Device: shareP = x*P + w0*M.
    const start = proverStart(w0, new ScriptedRandom(bytes(i.x_random)));
    assert.equal(start.x, x);
    const X = G.multiply(x).add(mul(M, w0));
    assert.equal(hex(X.toBytes(false)), d.share_p);
    assert.equal(hex(start.shareP), d.share_p);

    // Gateway: shareV = y*P + w0*N, its confirmation, and the keys it keeps.
    const gateway = verifierRespond({ w0, L }, start.shareP, ids, new ScriptedRandom(bytes(i.y_random)));
    const Y = G.multiply(y).add(mul(N, w0));
    assert.equal(hex(Y.toBytes(false)), d.share_v);
    assert.equal(hex(gateway.shareV), d.share_v);

    // Z and V from both sides' formulas.
    const Zp = mul(point(bytes(d.share_v)).subtract(mul(N, w0)), x);
    const Vp = mul(point(bytes(d.share_v)).subtract(mul(N, w0)), w1);
    const Zv = mul(point(bytes(d.share_p)).subtract(mul(M, w0)), y);
    const Vv = point(L).multiply(y);
    assert.ok(Zp.equals(Zv) && Vp.equals(Vv));
    assert.equal(hex(Zp.toBytes(false)), d.Z);
    assert.equal(hex(Vp.toBytes(false)), d.V);

    // TT: every field with an 8-byte little-endian length, w0 as 32 bytes big-endian last.
    const fields = [context, ids.idProver, idVerifier, bytes(common.M), bytes(common.N)].concat([
      bytes(d.share_p),
      bytes(d.share_v),
      bytes(d.Z),
      bytes(d.V),
      encodeScalar(w0),
    ]);
    const tt = Buffer.concat(fields.flatMap((f) => [le64(f.length), f]));
    assert.equal(hex(tt), d.TT);
    assert.equal(
      hex(
        encodeTranscript({
          ...ids,
          shareP: start.shareP,
          shareV: gateway.shareV,
          Z: bytes(d.Z),
          V: bytes(d.V),
          w0,
        }),
      ),
      d.TT,
    );
    const detail = spake2plusInternalsForTests.proverFinishDetailed(
      { w0, w1, x, shareP: start.shareP },
      gateway.shareV,
      ids,
    );
    assert.equal(hex(detail.TT), d.TT);

    // Key schedule: K_main = SHA-256(TT); HKDF (no salt) "ConfirmationKeys" -> K_confirmP || K_confirmV,
    // "SharedKey" -> K_shared; confirm_p = HMAC(K_confirmP, shareV), confirm_v = HMAC(K_confirmV, shareP).
    const kMain = createHash("sha256").update(tt).digest();
    const confirmation = hkdf(kMain, "ConfirmationKeys", 64);
    const kShared = hkdf(kMain, "SharedKey", 32);
    assert.equal(hex(kMain), d.K_main);
    assert.equal(hex(confirmation.subarray(0, 32)), d.K_confirmP);
    assert.equal(hex(confirmation.subarray(32)), d.K_confirmV);
    assert.equal(hex(kShared), d.K_shared);
    const confirmP = createHmac("sha256", confirmation.subarray(0, 32)).update(bytes(d.share_v)).digest();
    const confirmV = createHmac("sha256", confirmation.subarray(32)).update(bytes(d.share_p)).digest();
    assert.equal(hex(confirmP), d.confirm_p);
    assert.equal(hex(confirmV), d.confirm_v);
    const schedule = keySchedule(tt, start.shareP, gateway.shareV);
    assert.deepEqual([schedule.kMain, schedule.kConfirmP, schedule.kConfirmV, schedule.kShared].map(hex), [
      d.K_main,
      d.K_confirmP,
      d.K_confirmV,
      d.K_shared,
    ]);

    // Both roles end with the same values; each side's check of the other's confirmation passes.
    const device = proverFinish({ w0, w1, x, shareP: start.shareP }, gateway.shareV, ids);
    assert.equal(hex(gateway.confirmV), d.confirm_v);
    assert.equal(hex(gateway.kMain), d.K_main);
    assert.equal(hex(gateway.kShared), d.K_shared);
    assert.equal(hex(device.confirmP), d.confirm_p);
    assert.equal(hex(device.kMain), d.K_main);
    assert.ok(verifyConfirmation(device.expectedConfirmV, gateway.confirmV));
    assert.ok(verifyConfirmation(gateway.expectedConfirmP, device.confirmP));

    // Comparison code: HKDF(no salt, K_shared, "palyra-pairing-comparison-v1", 8) big-endian mod 10^6.
    const code = (hkdf(kShared, "palyra-pairing-comparison-v1", 8).readBigUInt64BE(0) % 1_000_000n)
      .toString()
      .padStart(6, "0");
    assert.equal(code, d.comparison_code_text);
    assert.equal(comparisonCode(kShared), d.comparison_code_text);
  });

  test(`${name}: identity key, completion signature and status-poll signature`, async () => {
    const seed = bytes(i.identity_seed);
    const identity = await identityFromSeed(deviceId, seed);
    assert.equal(hex(identity.publicKey), d.identity_public);
    assert.equal(hex(ed25519.getPublicKey(seed)), d.identity_public);
    assert.ok(isValidIdentityKey(identity.publicKey));
    assert.equal(identityFingerprint(identity.publicKey), d.identity_fingerprint_text);
    assert.equal(hex(createHash("sha256").update(identity.publicKey).digest()), d.identity_fingerprint_text);

    const csr = bytes(i.csr_der);
    assert.equal(hex(createHash("sha256").update(csr).digest()), d.csr_sha256);
    assert.equal((await parseAndVerifyCsr(csr)).keyFingerprint, d.csr_key_fingerprint_text);

    // Completion: Ed25519 over SHA-256("palyra-pairing-signature-v1" || K_main || identity_public || SHA-256(csr)).
    const preimage = Buffer.concat([
      Buffer.from("palyra-pairing-signature-v1"),
      bytes(d.K_main),
      identity.publicKey,
      createHash("sha256").update(csr).digest(),
    ]);
    assert.equal(hex(preimage), d.completion_preimage);
    assert.equal(hex(createHash("sha256").update(preimage).digest()), d.completion_message);
    const completion = completionMessage(bytes(d.K_main), identity.publicKey, csr);
    assert.equal(hex(completion), d.completion_message);
    assert.equal(hex(identity.sign(completion)), d.completion_signature);
    assert.equal(hex(ed25519.sign(completion, seed)), d.completion_signature);
    assert.ok(verifyIdentitySignature(identity.publicKey, completion, bytes(d.completion_signature)));

    // Status poll: Ed25519 over "palyra-pairing-status-v1" || request id || int64 big-endian ms (not hashed).
    const requestId = text(i.request_id_text);
    const timestamp = num(i.status_timestamp_ms);
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(BigInt(timestamp));
    const status = Buffer.concat([Buffer.from("palyra-pairing-status-v1"), Buffer.from(requestId), ts]);
    assert.equal(hex(status), d.status_message);
    assert.equal(hex(statusMessage(requestId, timestamp)), d.status_message);
    assert.equal(hex(identity.sign(status)), d.status_signature);
    assert.equal(hex(ed25519.sign(status, seed)), d.status_signature);
    assert.ok(verifyIdentitySignature(identity.publicKey, status, bytes(d.status_signature)));
    assert.ok(
      !verifyIdentitySignature(
        identity.publicKey,
        statusMessage(requestId, timestamp + 1),
        bytes(d.status_signature),
      ),
    );
  });

  test(`${name}: every message, byte for byte`, () => {
    checkMessage(flow, "begin_request", BeginPairingRequestSchema, {
      version: WIRE_VERSION,
      clientKind,
      codeId,
      deviceId,
    });
    checkMessage(flow, "begin_response", BeginPairingResponseSchema, {
      sessionId,
      expiresAtUnixMs: BigInt(num(i.session_expires_at_unix_ms)),
      salt,
      iterations,
      challenge,
      caCertDer: caDer,
    });
    checkMessage(flow, "exchange_request", ExchangePairingRequestSchema, {
      sessionId,
      shareP: bytes(d.share_p),
    });
    checkMessage(flow, "exchange_response", ExchangePairingResponseSchema, {
      shareV: bytes(d.share_v),
      confirmV: bytes(d.confirm_v),
    });
    checkMessage(flow, "complete_request", CompletePairingRequestSchema, {
      sessionId,
      confirmP: bytes(d.confirm_p),
      identityPublic: bytes(d.identity_public),
      csrDer: bytes(i.csr_der),
      deviceName: text(i.device_name_text),
      platform: text(i.platform_text),
      signature: bytes(d.completion_signature),
    });
    checkMessage(flow, "complete_response", CompletePairingResponseSchema, {
      requestId: text(i.request_id_text),
      state: PairingState.PENDING_APPROVAL,
      comparisonCode: text(d.comparison_code_text),
    });
    checkMessage(flow, "status_request", GetPairingStatusRequestSchema, {
      requestId: text(i.request_id_text),
      deviceId,
      timestampMs: BigInt(num(i.status_timestamp_ms)),
      signature: bytes(d.status_signature),
    });
    // An approved request is delivered, and seen, as COMPLETED.
    checkMessage(flow, "status_response", GetPairingStatusResponseSchema, {
      state: PairingState.COMPLETED,
      reason: "",
      clientCertPem: text(i.client_cert_pem_text),
      caCertPem: new X509Certificate(caDer).toString(),
      certExpiresAtUnixMs: BigInt(num(i.cert_expires_at_unix_ms)),
    });
  });

  test(`${name}: the delivered certificate is for this device and its CSR key, from the CA`, async () => {
    const pem = text(i.client_cert_pem_text);
    const cert = new X509Certificate(pem);
    const at = num(i.status_timestamp_ms);
    assert.deepEqual(verifyIssuedBy(cert.raw, caDer, at, { purpose: "client" }), { ok: true });
    assert.equal(certificateDeviceId(pem), deviceId);
    assert.equal(cert.subjectAltName, `URI:${deviceUri(deviceId)}`);
    assert.equal(cert.subject, `CN=${deviceId}\nO=Palyra`);
    assert.equal(Date.parse(cert.validTo), num(i.cert_expires_at_unix_ms));
    const csrKey = (await parseAndVerifyCsr(bytes(i.csr_der))).spkiDer;
    assert.deepEqual(cert.publicKey.export({ type: "spki", format: "der" }), csrKey);
  });
}

test("qr_pairing: the URI's grammar, its CA pin, and the secret's bytes as they enter PBKDF2", () => {
  const flow = vectors.qr_pairing;
  const qr = flow.qr_uri;
  assert.ok(qr);
  const uri = text(qr.uri_text);
  assert.equal(uri, flow.inputs.qr_uri_text);
  const parsed = parseQrUri(uri);
  assert.deepEqual(
    {
      gw: parsed.gateway,
      id: parsed.codeId,
      s: parsed.secret,
      ca: parsed.caSpkiSha256.toString("base64url"),
      k: parsed.clientKind,
    },
    { gw: qr.gw_text, id: qr.id_text, s: qr.s_text, ca: qr.ca_text, k: qr.k_text },
  );
  assert.equal(buildQrUri(parsed), uri);
  // The form-urlencoded query escapes the colon of gw.
  assert.ok(uri.startsWith(`palyra://pair?v=1&gw=${encodeURIComponent(text(qr.gw_text))}&id=`));
  assert.equal(qr.ca_text, common.ca_spki_sha256_base64url_text);
  assert.equal(parsed.codeId, flow.inputs.code_id_text);
  assert.equal(parsed.clientKind, flow.inputs.client_kind_text);
  // s is 16 random bytes in base64url (22 characters), and its TEXT is the password, not the 16 bytes.
  assert.equal(text(qr.s_text).length, 22);
  assert.equal(hex(Buffer.from(text(qr.s_text), "base64url")), qr.s_base64url_decoded_not_used);
  assert.equal(flow.derived.password, hex(Buffer.from(text(qr.s_text), "utf8")));
  assert.equal(flow.inputs.secret_text, qr.s_text);
});

test("recovery: the signed message and the RecoverCertificate request", async () => {
  const r = vectors.recovery;
  const deviceId = text(r.inputs.device_id_text);
  const csr = bytes(r.inputs.csr_der);
  await parseAndVerifyCsr(csr);
  const timestampMs = num(r.inputs.timestamp_ms);
  const held = text(r.inputs.held_fingerprint_text);
  // The fingerprint is of the certificate the pin device was issued (lowercase hex SHA-256 of its DER).
  const issued = new X509Certificate(text(vectors.pin_pairing.inputs.client_cert_pem_text));
  assert.equal(held, createHash("sha256").update(issued.raw).digest("hex"));
  const ts = Buffer.alloc(8);
  ts.writeBigInt64BE(BigInt(timestampMs));
  const preimage = Buffer.concat([
    Buffer.from("palyra-recovery-v1"),
    Buffer.from(deviceId),
    ts,
    Buffer.of(held.length),
    Buffer.from(held, "ascii"),
    createHash("sha256").update(csr).digest(),
  ]);
  assert.equal(hex(preimage), r.derived.recovery_preimage);
  assert.equal(hex(createHash("sha256").update(preimage).digest()), r.derived.recovery_message);
  assert.equal(hex(recoveryMessage(deviceId, timestampMs, held, csr)), r.derived.recovery_message);
  const identity = await identityFromSeed(deviceId, bytes(r.inputs.identity_seed));
  assert.equal(hex(identity.sign(bytes(r.derived.recovery_message))), r.derived.signature);
  checkMessage(r, "recover_request", RecoverCertificateRequestSchema, {
    deviceId,
    csrDer: csr,
    timestampMs: BigInt(timestampMs),
    heldFingerprint: held,
    signature: bytes(r.derived.signature),
  });
});

test("renewal: the signed message and the RenewCertificate request", async () => {
  const r = vectors.renewal;
  const deviceId = text(r.inputs.device_id_text);
  const csr = bytes(r.inputs.csr_der);
  await parseAndVerifyCsr(csr);
  const preimage = Buffer.concat([
    Buffer.from("palyra-renewal-signature-v1"),
    Buffer.from(deviceId),
    createHash("sha256").update(csr).digest(),
  ]);
  assert.equal(hex(preimage), r.derived.renewal_preimage);
  assert.equal(hex(createHash("sha256").update(preimage).digest()), r.derived.renewal_message);
  assert.equal(hex(renewalMessage(deviceId, csr)), r.derived.renewal_message);
  const identity = await identityFromSeed(deviceId, bytes(r.inputs.identity_seed));
  assert.equal(hex(identity.sign(renewalMessage(deviceId, csr))), r.derived.identity_signature);
  checkMessage(r, "renew_request", RenewCertificateRequestSchema, {
    deviceId,
    csrDer: csr,
    identitySignature: bytes(r.derived.identity_signature),
  });
});

test("QUIC frames: 4-byte big-endian length, then the protobuf message", () => {
  const q = vectors.quic;
  const deviceId = text(vectors.pin_pairing.inputs.device_id_text);
  const frames = {
    session_request_frame: encodeMessage(QuicRequestSchema, {
      protocolVersion: 1,
      method: "node.session",
      body: { case: "session", value: {} },
    }),
    session_response_frame: encodeResponse({ body: { case: "session", value: {} } }),
    hello_frame: encodeMessage(NodeMessageSchema, {
      body: { case: "hello", value: { deviceId, resumeFrom: 0n, epoch: "" } },
    }),
    config_frame: encodeMessage(GatewayMessageSchema, {
      body: {
        case: "config",
        value: { heartbeatIntervalMs: 10_000, epoch: "00112233445566ff", resumed: false },
      },
    }),
  };
  for (const [name, frame] of Object.entries(frames)) {
    assert.equal(hex(frame), q[name], name);
    assert.equal(Buffer.from(frame).readUInt32BE(0), frame.length - 4);
    assert.equal(new FrameDecoder().push(frame).length, 1);
  }
  const request = frames.session_request_frame.subarray(4);
  assert.equal(
    hex(
      toBinary(
        QuicRequestSchema,
        create(QuicRequestSchema, {
          protocolVersion: 1,
          method: "node.session",
          body: { case: "session", value: {} },
        }),
      ),
    ),
    hex(request),
  );
  assert.equal(
    hex(frames.session_response_frame.subarray(4)),
    encoded(QuicResponseSchema, { protocolVersion: 1, body: { case: "session", value: {} } }),
  );
  assert.equal(q.alpn_text, "palyra-quic-v1");
  assert.equal(q.max_frame_bytes, 512 * 1024);
});

test("nothing in the file goes unchecked: the derived values are exactly those recomputed above", () => {
  const pairingKeys = [
    "password",
    "pbkdf_input",
    "pbkdf_output",
    "w0s",
    "w1s",
    "w0",
    "w1",
    "L",
    "x",
    "share_p",
    "y",
    "share_v",
    "Z",
    "V",
    "context",
    "id_prover",
    "id_verifier",
    "TT",
    "K_main",
    "K_confirmP",
    "K_confirmV",
    "K_shared",
    "confirm_p",
    "confirm_v",
    "comparison_code_text",
    "identity_public",
    "identity_fingerprint_text",
    "csr_sha256",
    "csr_key_fingerprint_text",
    "completion_preimage",
    "completion_message",
    "completion_signature",
    "status_message",
    "status_signature",
  ];
  const messages = [
    "begin_request",
    "begin_response",
    "exchange_request",
    "exchange_response",
    "complete_request",
    "complete_response",
    "status_request",
    "status_response",
  ];
  for (const flow of [vectors.pin_pairing, vectors.qr_pairing]) {
    assert.deepEqual(Object.keys(flow.derived).sort(), [...pairingKeys].sort());
    assert.deepEqual(Object.keys(flow.messages).sort(), [...messages].sort());
  }
  assert.deepEqual(Object.keys(vectors.renewal.derived).sort(), [
    "identity_signature",
    "renewal_message",
    "renewal_preimage",
  ]);
  assert.deepEqual(Object.keys(vectors.recovery.derived).sort(), [
    "recovery_message",
    "recovery_preimage",
    "signature",
  ]);
  assert.deepEqual(Object.keys(vectors.quic).sort(), [
    "alpn_text",
    "config_frame",
    "hello_frame",
    "max_frame_bytes",
    "session_request_frame",
    "session_response_frame",
  ]);
});
