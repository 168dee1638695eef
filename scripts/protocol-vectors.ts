/**
 * Writes docs/protocol-vectors.json: one full PIN pairing and one full QR pairing of
 * `palyra-pairing-v1`, every message and every derived value, computed with fixed randomness and a fixed
 * clock. The gateway side is the real PairingGatewayService (over an in-memory database); the device side
 * is built from the same primitives a device in another language would use, step by step.
 *
 *   node --import tsx scripts/protocol-vectors.ts           # (re)writes the file
 *   node --import tsx scripts/protocol-vectors.ts --check   # exits 1 if the file differs from a fresh run
 *
 * Everything is deterministic, including the ECDSA signatures on the CA certificate, the CSRs and the
 * client certificates: the script re-signs them with RFC 6979 (deterministic) ECDSA so that the file
 * regenerates byte for byte. A running gateway signs with random nonces; either kind verifies the same.
 * test/protocol-vectors.test.ts recomputes every derived value from the file's inputs.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  pbkdf2Sync,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { p256 } from "@noble/curves/nist.js";
import { ManualClock } from "../src/common/clock.js";
import { newId } from "../src/common/ids.js";
import { limits } from "../src/common/limits.js";
import { type Random, SeededRandom } from "../src/common/random.js";
import { identityFingerprint, spkiDigest } from "../src/crypto/fingerprint.js";
import {
  comparisonCode,
  computeVerifier,
  deriveSpakeSecrets,
  encodeScalar,
  proverFinish,
  proverStart,
  spake2plusInternalsForTests,
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
import { QuicRequestSchema } from "../src/gen/palyra/v1/quic_pb.js";
import { RecoverCertificateRequestSchema } from "../src/gen/palyra/v1/recovery_pb.js";
import { CertificateAuthority, randomSerialHex } from "../src/identity/ca.js";
import { caCommonName, caExtensions, keyIdentifier } from "../src/identity/certificate-profiles.js";
import { createCsr, parseAndVerifyCsr } from "../src/identity/csr.js";
import { type DeviceIdentity, verifyIdentitySignature } from "../src/identity/device-identity.js";
import { recoveryMessage } from "../src/identity/recovery.js";
import { renewalMessage } from "../src/identity/rotation.js";
import { ECDSA_SHA256, P256_KEY_PARAMS, x509 } from "../src/identity/x509-setup.js";
import { spakePassword } from "../src/pairing/code-service.js";
import { createPairingServices } from "../src/pairing/pairing-services.js";
import { parseQrUri } from "../src/pairing/qr-uri.js";
import {
  completionMessage,
  PROTOCOL,
  pairingContext,
  statusMessage,
  verifierIdentity,
} from "../src/pairing/transcript.js";
import { openGatewayStore } from "../src/store/gateway-store.js";
import {
  beginToWire,
  completeToWire,
  exchangeToWire,
  statusToWire,
  WIRE_VERSION,
} from "../src/transport/grpc/pairing-mapping.js";
import { encodeMessage, encodeResponse } from "../src/transport/quic/messages.js";
import { identityFromSeed, readableFields } from "../test/helpers/protocol-vectors.js";

const OUTPUT = new URL("../docs/protocol-vectors.json", import.meta.url);
const SEED = "palyra-protocol-vectors-v1";
/** 2026-01-01T12:00:00Z */
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const GATEWAY_ADDRESS = "127.0.0.1:7444";
const SOURCE_ADDRESS = "192.0.2.10";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const seeded = (label: string): SeededRandom => new SeededRandom(`${SEED}/${label}`);

/** Remembers every draw, so the bytes that became x or y can be written down. */
class RecordingRandom implements Random {
  #draws: Buffer[] = [];
  constructor(readonly inner: Random) {}
  bytes(length: number): Buffer {
    const out = this.inner.bytes(length);
    this.#draws.push(Buffer.from(out));
    return out;
  }
  take(): Buffer[] {
    const draws = this.#draws;
    this.#draws = [];
    return draws;
  }
}

// --- deterministic P-256 keys and ECDSA signatures (for the fixed CA, CSRs and certificates) ---

interface FixedP256Key {
  scalar: Uint8Array;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function fixedP256Key(label: string): FixedP256Key {
  const random = seeded(label);
  for (;;) {
    const scalar = random.bytes(32);
    const d = BigInt(`0x${hex(scalar)}`);
    if (d === 0n || d >= GROUP_ORDER) continue;
    const point = Buffer.from(p256.getPublicKey(scalar, false));
    const jwk = {
      kty: "EC",
      crv: "P-256",
      d: scalar.toString("base64url"),
      x: point.subarray(1, 33).toString("base64url"),
      y: point.subarray(33).toString("base64url"),
    };
    const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
    return { scalar, privateKey, publicKey: createPublicKey(privateKey) };
  }
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derElement(bytes: Uint8Array, offset: number): { start: number; end: number; contentStart: number } {
  const first = bytes[offset + 1]!;
  let length = first;
  let contentStart = offset + 2;
  if (first >= 0x80) {
    length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + bytes[contentStart + i]!;
    contentStart += first & 0x7f;
  }
  return { start: offset, end: contentStart + length, contentStart };
}

/**
 * Replaces the signature of a certificate or CSR (`SEQUENCE { toBeSigned, algorithm, BIT STRING }`,
 * ecdsa-with-SHA256) with a deterministic RFC 6979 one by the same key. Nothing signed changes.
 */
function resignDeterministically(der: Uint8Array, signer: Uint8Array): Buffer {
  const outer = derElement(der, 0);
  const tbs = derElement(der, outer.contentStart);
  const algorithm = derElement(der, tbs.end);
  const signature = p256.sign(der.subarray(tbs.start, tbs.end), signer, {
    prehash: true,
    format: "der",
    extraEntropy: false,
  });
  const bitString = Buffer.concat([
    Buffer.of(0x03),
    derLength(signature.length + 1),
    Buffer.of(0),
    signature,
  ]);
  const content = Buffer.concat([
    der.subarray(tbs.start, tbs.end),
    der.subarray(algorithm.start, algorithm.end),
    bitString,
  ]);
  return Buffer.concat([Buffer.of(0x30), derLength(content.length), content]);
}

/** The CA exactly as CertificateAuthority.create makes it, but from a fixed key and signed deterministically. */
async function fixedCa(clock: ManualClock): Promise<{ ca: CertificateAuthority; key: FixedP256Key }> {
  const key = fixedP256Key("ca-key");
  const spkiDer = key.publicKey.export({ type: "spki", format: "der" });
  const keys = {
    privateKey: await webcrypto.subtle.importKey(
      "pkcs8",
      key.privateKey.export({ type: "pkcs8", format: "der" }),
      P256_KEY_PARAMS,
      false,
      ["sign"],
    ),
    publicKey: await webcrypto.subtle.importKey("spki", spkiDer, P256_KEY_PARAMS, true, ["verify"]),
  };
  const now = clock.now();
  const generated = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(seeded("ca-serial")),
    name: [{ CN: [caCommonName(createHash("sha256").update(spkiDer).digest("hex"))] }],
    notBefore: new Date(now - limits.certificateBackdateMs),
    notAfter: new Date(now + limits.caLifetimeMs),
    keys: keys as never,
    signingAlgorithm: ECDSA_SHA256,
    extensions: caExtensions(keyIdentifier(spkiDer)),
  });
  const der = resignDeterministically(new Uint8Array(generated.rawData), key.scalar);
  const ca = await CertificateAuthority.load(
    {
      certPem: new X509Certificate(der).toString(),
      keyPem: key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    },
    { clock, random: seeded("ca-issue") },
  );
  return { ca, key };
}

async function fixedCsr(label: string): Promise<{ der: Buffer; key: FixedP256Key }> {
  const key = fixedP256Key(label);
  const der = resignDeterministically(await createCsr(key.privateKey, key.publicKey), key.scalar);
  await parseAndVerifyCsr(der);
  return { der, key };
}

/** A device identity from a fixed 32-byte Ed25519 seed (RFC 8032 private key) and a seeded id. */
async function fixedIdentity(
  label: string,
  clock: ManualClock,
): Promise<{ identity: DeviceIdentity; seed: Buffer }> {
  const seed = seeded(`${label}/identity-seed`).bytes(32);
  return { identity: await identityFromSeed(newId(clock, seeded(`${label}/device-id`)), seed), seed };
}

// --- the run ---

const clock = new ManualClock(NOW);
const { ca } = await fixedCa(clock);
const caSpkiSha256 = spkiDigest(new X509Certificate(ca.certDer));
const gatewayRandom = new RecordingRandom(seeded("gateway"));
const store = openGatewayStore(":memory:", clock, seeded("store"));
const services = createPairingServices({ store, ca, clock, random: gatewayRandom });

async function pairing(method: "pin" | "qr", label: string, clientKind: string, deviceName: string) {
  const minted = await services.codes.mint({
    method,
    clientKind,
    ...(method === "qr" ? { gateway: GATEWAY_ADDRESS } : {}),
  });
  const qr = minted.qr_uri ? parseQrUri(minted.qr_uri) : undefined;
  const secret = qr ? qr.secret : minted.pin!;
  const { identity, seed } = await fixedIdentity(label, clock);
  const platform = "linux";

  // 1. BeginPairing
  const beginRequest = {
    version: WIRE_VERSION,
    clientKind,
    codeId: minted.code_id,
    deviceId: identity.deviceId,
  };
  const begun = await services.service.begin(
    { version: PROTOCOL, clientKind, codeId: minted.code_id, deviceId: identity.deviceId },
    SOURCE_ADDRESS,
  );
  if (qr && !spkiDigest(new X509Certificate(begun.caCertDer)).equals(qr.caSpkiSha256))
    throw new Error("the CA does not match the QR pin");

  // 2. The device's SPAKE2+ values.
  const password = spakePassword(secret);
  const pbkdfInput = Buffer.concat([lengthPrefix(password.length), password]);
  const { w0, w1 } = deriveSpakeSecrets(password, begun.salt, begun.iterations);
  const deviceRandom = new RecordingRandom(seeded(`${label}/x`));
  const start = proverStart(w0, deviceRandom);
  const xDraws = deviceRandom.take();
  const ids = {
    context: pairingContext({ ...begun, clientKind, codeId: minted.code_id }),
    idProver: Buffer.from(identity.deviceId),
    idVerifier: verifierIdentity(caSpkiSha256.toString("hex")),
  };

  // 3. ExchangePairing: the gateway draws y and nothing else.
  gatewayRandom.take();
  const exchanged = await services.service.exchange({ sessionId: begun.sessionId, shareP: start.shareP });
  const yDraws = gatewayRandom.take();
  if (yDraws.length !== 1 || yDraws[0]!.length !== 32)
    throw new Error("expected one 32-byte draw (y) at Exchange");
  const result = proverFinish({ w0, w1, x: start.x, shareP: start.shareP }, exchanged.shareV, ids);
  if (!verifyConfirmation(result.expectedConfirmV, exchanged.confirmV))
    throw new Error("confirm_v does not verify");
  const detail = spake2plusInternalsForTests.proverFinishDetailed(
    { w0, w1, x: start.x, shareP: start.shareP },
    exchanged.shareV,
    ids,
  );
  const tt = encodeTranscript({
    ...ids,
    shareP: start.shareP,
    shareV: exchanged.shareV,
    Z: detail.Z,
    V: detail.V,
    w0,
  });
  if (!tt.equals(detail.TT)) throw new Error("transcript mismatch");
  const keys = keySchedule(tt, start.shareP, exchanged.shareV);

  // 4. CompletePairing
  const csr = await fixedCsr(`${label}/csr-key`);
  const csrSha256 = createHash("sha256").update(csr.der).digest();
  const completionPreimage = Buffer.concat([
    Buffer.from("palyra-pairing-signature-v1"),
    result.kMain,
    identity.publicKey,
    csrSha256,
  ]);
  const completion = completionMessage(result.kMain, identity.publicKey, csr.der);
  const completionSignature = identity.sign(completion);
  const completeRequest = {
    sessionId: begun.sessionId,
    confirmP: result.confirmP,
    identityPublic: identity.publicKey,
    csrDer: csr.der,
    deviceName,
    platform,
    signature: completionSignature,
  };
  const completed = await services.service.complete(completeRequest);
  if (completed.comparisonCode !== comparisonCode(result.kShared)) throw new Error("comparison codes differ");

  // 5. Approval, then one signed status poll that delivers the certificate.
  await services.approvals.approve(completed.requestId, { actor: "admin" });
  const timestampMs = clock.now();
  const status = statusMessage(completed.requestId, timestampMs);
  const statusSignature = identity.sign(status);
  const statusRequest = {
    requestId: completed.requestId,
    deviceId: identity.deviceId,
    timestampMs: BigInt(timestampMs),
    signature: statusSignature,
  };
  const delivered = await services.service.status({ ...statusRequest, timestampMs });
  const certPem = new X509Certificate(
    resignDeterministically(new X509Certificate(delivered.clientCertPem).raw, fixedP256Key("ca-key").scalar),
  ).toString();
  const statusResponse = { ...delivered, clientCertPem: certPem };
  if (!verifyIdentitySignature(identity.publicKey, status, statusSignature))
    throw new Error("status signature");

  const pbkdfOutput = pbkdf2Sync(pbkdfInput, begun.salt, begun.iterations, 80, "sha256");

  return {
    inputs: {
      method_text: method,
      client_kind_text: clientKind,
      ...(method === "pin" ? { typed_code_text: minted.typed } : { qr_uri_text: minted.qr_uri }),
      code_id_text: minted.code_id,
      secret_text: secret,
      salt: hex(begun.salt),
      iterations: begun.iterations,
      identity_seed: hex(seed),
      device_id_text: identity.deviceId,
      device_name_text: deviceName,
      platform_text: platform,
      source_address_text: SOURCE_ADDRESS,
      session_id_text: begun.sessionId,
      session_expires_at_unix_ms: begun.expiresAt,
      challenge: hex(begun.challenge),
      x_random: hex(xDraws[0]!),
      y_random: hex(yDraws[0]!),
      csr_der: hex(csr.der),
      request_id_text: completed.requestId,
      status_timestamp_ms: timestampMs,
      client_cert_pem_text: certPem,
      cert_expires_at_unix_ms: delivered.certExpiresAt,
    },
    derived: {
      password: hex(password),
      pbkdf_input: hex(pbkdfInput),
      pbkdf_output: hex(pbkdfOutput),
      w0s: hex(pbkdfOutput.subarray(0, 40)),
      w1s: hex(pbkdfOutput.subarray(40)),
      w0: hex(encodeScalar(w0)),
      w1: hex(encodeScalar(w1)),
      L: hex(computeVerifier(w0, w1).L),
      x: hex(encodeScalar(start.x)),
      share_p: hex(start.shareP),
      y: hex(yDraws[0]!),
      share_v: hex(exchanged.shareV),
      Z: hex(detail.Z),
      V: hex(detail.V),
      context: hex(ids.context),
      id_prover: hex(ids.idProver),
      id_verifier: hex(ids.idVerifier),
      TT: hex(tt),
      K_main: hex(keys.kMain),
      K_confirmP: hex(keys.kConfirmP),
      K_confirmV: hex(keys.kConfirmV),
      K_shared: hex(keys.kShared),
      confirm_p: hex(result.confirmP),
      confirm_v: hex(exchanged.confirmV),
      comparison_code_text: completed.comparisonCode,
      identity_public: hex(identity.publicKey),
      identity_fingerprint_text: identityFingerprint(identity.publicKey),
      csr_sha256: hex(csrSha256),
      csr_key_fingerprint_text: (await parseAndVerifyCsr(csr.der)).keyFingerprint,
      completion_preimage: hex(completionPreimage),
      completion_message: hex(completion),
      completion_signature: hex(completionSignature),
      status_message: hex(status),
      status_signature: hex(statusSignature),
    },
    messages: {
      begin_request: message(BeginPairingRequestSchema, create(BeginPairingRequestSchema, beginRequest)),
      begin_response: message(BeginPairingResponseSchema, beginToWire(begun)),
      exchange_request: message(
        ExchangePairingRequestSchema,
        create(ExchangePairingRequestSchema, { sessionId: begun.sessionId, shareP: start.shareP }),
      ),
      exchange_response: message(ExchangePairingResponseSchema, exchangeToWire(exchanged)),
      complete_request: message(
        CompletePairingRequestSchema,
        create(CompletePairingRequestSchema, completeRequest),
      ),
      complete_response: message(CompletePairingResponseSchema, completeToWire(completed)),
      status_request: message(
        GetPairingStatusRequestSchema,
        create(GetPairingStatusRequestSchema, statusRequest),
      ),
      status_response: message(GetPairingStatusResponseSchema, statusToWire(statusResponse)),
    },
    ...(qr
      ? {
          qr_uri: {
            uri_text: minted.qr_uri,
            v_text: "1",
            gw_text: qr.gateway,
            id_text: qr.codeId,
            s_text: qr.secret,
            ca_text: qr.caSpkiSha256.toString("base64url"),
            k_text: qr.clientKind,
            s_base64url_decoded_not_used: hex(Buffer.from(qr.secret, "base64url")),
          },
        }
      : {}),
  };
}

/** A message as its fields (protobuf names; bytes in hex, 64-bit integers as numbers) and its encoding. */
function message<D extends DescMessage>(schema: D, value: MessageShape<D>) {
  const protobuf = toBinary(schema, value);
  return { fields: readableFields(schema, protobuf), protobuf: hex(protobuf) };
}

const renewalCsr = await fixedCsr("renewal/csr-key");

const pin = await pairing("pin", "pin-device", "node", "worker-1");
clock.advance(60_000);
const qr = await pairing("qr", "qr-device", "cli", "laptop");

const renewalDevice = pin.inputs.device_id_text;
const renewalIdentity = (await fixedIdentity("pin-device", new ManualClock(NOW))).identity;
const renewal = renewalMessage(renewalDevice, renewalCsr.der);
const renewalSignature = renewalIdentity.sign(renewal);
const renewalRequest = create(RenewCertificateRequestSchema, {
  deviceId: renewalDevice,
  csrDer: renewalCsr.der,
  identitySignature: renewalSignature,
});

// Recovery: the pin device, its certificate expired, asks for a new one a day later with a new key.
const recoveryCsr = await fixedCsr("recovery/csr-key");
const recoveryTimestampMs = NOW + 24 * 60 * 60 * 1000;
const recoveryHeld = createHash("sha256")
  .update(new X509Certificate(pin.inputs.client_cert_pem_text).raw)
  .digest("hex");
const recovery = recoveryMessage(renewalDevice, recoveryTimestampMs, recoveryHeld, recoveryCsr.der);
const recoverySignature = renewalIdentity.sign(recovery);
const recoveryTimestamp = Buffer.alloc(8);
recoveryTimestamp.writeBigInt64BE(BigInt(recoveryTimestampMs));

const helloFrame = encodeMessage(NodeMessageSchema, {
  body: { case: "hello", value: { deviceId: renewalDevice, resumeFrom: 0n, epoch: "" } },
});
const sessionRequestFrame = encodeMessage(QuicRequestSchema, {
  protocolVersion: 1,
  method: "node.session",
  body: { case: "session", value: {} },
});
const sessionResponseFrame = encodeResponse({ body: { case: "session", value: {} } });
const configFrame = encodeMessage(GatewayMessageSchema, {
  body: {
    case: "config",
    value: { heartbeatIntervalMs: limits.heartbeatIntervalMs, epoch: "00112233445566ff", resumed: false },
  },
});

const vectors = {
  about:
    "Test vectors for palyra-pairing-v1 and the node session, generated by scripts/protocol-vectors.ts " +
    "(node --import tsx scripts/protocol-vectors.ts) and checked by test/protocol-vectors.test.ts. " +
    "See docs/protocol.md for what each value means.",
  encoding:
    "Every byte string is lowercase hex, except fields whose name ends in _text (UTF-8 text as it is), " +
    "_pem_text (PEM text) or _ms/_unix_ms/iterations (decimal integers). Scalars are 32 bytes big-endian; " +
    "points are 65-byte uncompressed SEC1 (04 || X || Y). Under messages, `protobuf` is the exact " +
    "protobuf encoding of the message (what goes inside the gRPC frame) and `fields` is the same message " +
    "field by field, with protobuf field names, bytes fields in hex and 64-bit integers as numbers.",
  fixed_inputs_note:
    "The CA certificate, the CSRs and the client certificates are inputs, not derived values: a gateway " +
    "signs with randomized ECDSA. These were re-signed with deterministic ECDSA (RFC 6979) so that the " +
    "file regenerates byte for byte; they verify like any other signature.",
  common: {
    protocol_text: PROTOCOL,
    suite_text: "P256-SHA256-HKDF-SHA256-HMAC-SHA256",
    group_order_n: GROUP_ORDER.toString(16).padStart(64, "0"),
    M: hex(M.toBytes(false)),
    N: hex(N.toBytes(false)),
    M_compressed: hex(M.toBytes(true)),
    N_compressed: hex(N.toBytes(true)),
    clock_start_unix_ms: NOW,
    gateway_address_text: GATEWAY_ADDRESS,
    ca_cert_der: hex(ca.certDer),
    ca_cert_sha256: hex(createHash("sha256").update(ca.certDer).digest()),
    ca_spki_sha256: hex(caSpkiSha256),
    ca_spki_sha256_base64url_text: caSpkiSha256.toString("base64url"),
  },
  pin_pairing: pin,
  qr_pairing: qr,
  renewal: {
    inputs: {
      device_id_text: renewalDevice,
      identity_seed: pin.inputs.identity_seed,
      csr_der: hex(renewalCsr.der),
    },
    derived: {
      renewal_preimage: hex(
        Buffer.concat([
          Buffer.from("palyra-renewal-signature-v1"),
          Buffer.from(renewalDevice),
          createHash("sha256").update(renewalCsr.der).digest(),
        ]),
      ),
      renewal_message: hex(renewal),
      identity_signature: hex(renewalSignature),
    },
    messages: { renew_request: message(RenewCertificateRequestSchema, renewalRequest) },
  },
  recovery: {
    inputs: {
      device_id_text: renewalDevice,
      identity_seed: pin.inputs.identity_seed,
      csr_der: hex(recoveryCsr.der),
      timestamp_ms: recoveryTimestampMs,
      held_fingerprint_text: recoveryHeld,
    },
    derived: {
      recovery_preimage: hex(
        Buffer.concat([
          Buffer.from("palyra-recovery-v1"),
          Buffer.from(renewalDevice),
          recoveryTimestamp,
          Buffer.of(recoveryHeld.length),
          Buffer.from(recoveryHeld, "ascii"),
          createHash("sha256").update(recoveryCsr.der).digest(),
        ]),
      ),
      recovery_message: hex(recovery),
      signature: hex(recoverySignature),
    },
    messages: {
      recover_request: message(
        RecoverCertificateRequestSchema,
        create(RecoverCertificateRequestSchema, {
          deviceId: renewalDevice,
          csrDer: recoveryCsr.der,
          timestampMs: BigInt(recoveryTimestampMs),
          heldFingerprint: recoveryHeld,
          signature: recoverySignature,
        }),
      ),
    },
  },
  quic: {
    alpn_text: "palyra-quic-v1",
    max_frame_bytes: limits.quicMaxFrameBytes,
    session_request_frame: hex(sessionRequestFrame),
    session_response_frame: hex(sessionResponseFrame),
    hello_frame: hex(helloFrame),
    config_frame: hex(configFrame),
  },
};

const text = `${JSON.stringify(vectors, null, 2)}\n`;
store.close();
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUTPUT, "utf8");
  } catch {
    // missing: differs
  }
  if (current !== text) {
    process.stderr.write("docs/protocol-vectors.json differs from a fresh run\n");
    process.exit(1);
  }
  process.stdout.write("docs/protocol-vectors.json is up to date\n");
} else {
  writeFileSync(OUTPUT, text);
  process.stdout.write(`wrote ${OUTPUT.pathname}\n`);
}
