import { X509Certificate } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import { spkiDigest } from "../crypto/fingerprint.js";
import { computeVerifier, deriveSpakeSecrets, encodeScalar } from "../crypto/spake2plus.js";
import type { CertificateAuthority } from "../identity/ca.js";
import type { PairingRepository } from "../store/ports.js";
import type { PairingCodeRecord } from "../store/records.js";
import { isCodeId, newCodeId, newPin, newQrSecret, type PairingMethod } from "./codes.js";
import { PairingError } from "./errors.js";
import { buildQrUri, CLIENT_KIND } from "./qr-uri.js";

export interface MintOptions {
  method: PairingMethod;
  clientKind?: string;
  ttlMs?: number;
  maxAttempts?: number;
  /** host:port devices dial; required for QR codes (it goes into the URI). */
  gateway?: string;
  actor?: string;
}

/** Returned once, at minting: the only time the PIN or QR secret exists outside the device. */
export interface MintedCode {
  code_id: string;
  method: PairingMethod;
  client_kind: string;
  expires_at: string;
  max_attempts: number;
  pin?: string;
  typed?: string;
  qr_uri?: string;
}

export interface CodeView {
  code_id: string;
  method: PairingMethod;
  client_kind: string;
  state: PairingCodeRecord["state"];
  created_at: string;
  expires_at: string;
  failed_attempts: number;
  max_attempts: number;
}

/** The password fed to SPAKE2+ (DESIGN: the code alone): the PIN digits, or the QR secret's base64url text. */
export function spakePassword(secret: string): Buffer {
  return Buffer.from(secret, "utf8");
}

/** Mints codes (storing only the SPAKE2+ verifier) and lists them without secrets. */
export class CodeService {
  readonly #repo: PairingRepository;
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(repo: PairingRepository, ca: CertificateAuthority, clock: Clock, random: Random) {
    this.#repo = repo;
    this.#ca = ca;
    this.#clock = clock;
    this.#random = random;
  }

  async mint(options: MintOptions): Promise<MintedCode> {
    const clientKind = options.clientKind ?? "node";
    const ttlMs = options.ttlMs ?? limits.pairingCodeDefaultTtlMs;
    const maxAttempts = options.maxAttempts ?? limits.pairingDefaultMaxAttempts;
    if (!CLIENT_KIND.test(clientKind))
      throw new PairingError("invalid_input", "client kind must match [a-z][a-z0-9_-]{0,31}");
    if (!Number.isInteger(ttlMs) || ttlMs < limits.pairingCodeMinTtlMs || ttlMs > limits.pairingCodeMaxTtlMs)
      throw new PairingError("invalid_input", "code TTL must be between 1 minute and 24 hours");
    if (
      !Number.isInteger(maxAttempts) ||
      maxAttempts < limits.pairingMinAttempts ||
      maxAttempts > limits.pairingMaxAttempts
    )
      throw new PairingError(
        "invalid_input",
        `max attempts must be ${limits.pairingMinAttempts} to ${limits.pairingMaxAttempts}`,
      );
    if (options.method === "qr" && !options.gateway)
      throw new PairingError("invalid_input", "a QR code needs the gateway address devices dial (host:port)");

    const now = this.#clock.now();
    await this.#repo.expireCodes(now);
    const live = new Set((await this.#repo.liveCodes()).map((c) => c.codeId));
    let codeId = newCodeId(this.#random);
    while (live.has(codeId)) codeId = newCodeId(this.#random);

    const secret = options.method === "pin" ? newPin(this.#random) : newQrSecret(this.#random);
    const iterations = options.method === "pin" ? limits.pinPbkdfIterations : limits.qrPbkdfIterations;
    const salt = this.#random.bytes(16);
    const { w0, w1 } = deriveSpakeSecrets(spakePassword(secret), salt, iterations);
    const verifier = computeVerifier(w0, w1);
    const record: PairingCodeRecord = {
      id: newId(this.#clock, this.#random),
      codeId,
      method: options.method,
      clientKind,
      salt,
      iterations,
      w0: Buffer.from(encodeScalar(verifier.w0)),
      L: Buffer.from(verifier.L),
      createdAt: now,
      expiresAt: now + ttlMs,
      maxAttempts,
      failedAttempts: 0,
      state: "live",
    };
    // A code id another gateway took at the same moment makes the insert fail on the unique index of
    // live code ids; the caller sees an error and mints again.
    await this.#repo.insertCode(record, {
      kind: "pairing.code_minted",
      actor: options.actor ?? "admin",
      detail: { code_id: codeId, method: options.method, client_kind: clientKind },
    });
    const minted: MintedCode = {
      code_id: codeId,
      method: options.method,
      client_kind: clientKind,
      expires_at: new Date(record.expiresAt).toISOString(),
      max_attempts: maxAttempts,
    };
    if (options.method === "pin") return { ...minted, pin: secret, typed: `${codeId}-${secret}` };
    const caSpkiSha256 = spkiDigest(new X509Certificate(this.#ca.certDer));
    return {
      ...minted,
      qr_uri: buildQrUri({ gateway: options.gateway!, codeId, secret, caSpkiSha256, clientKind }),
    };
  }

  async list(): Promise<CodeView[]> {
    await this.#repo.expireCodes(this.#clock.now());
    return (await this.#repo.recentCodes()).map((c) => ({
      code_id: c.codeId,
      method: c.method,
      client_kind: c.clientKind,
      state: c.state,
      created_at: new Date(c.createdAt).toISOString(),
      expires_at: new Date(c.expiresAt).toISOString(),
      failed_attempts: c.failedAttempts,
      max_attempts: c.maxAttempts,
    }));
  }

  /** The live code a Begin names, or (empty id) the only live PIN code; undefined in every other case. */
  async resolve(codeId: string): Promise<PairingCodeRecord | undefined> {
    const now = this.#clock.now();
    await this.#repo.expireCodes(now);
    let code: PairingCodeRecord | undefined;
    if (codeId === "") {
      const pins = (await this.#repo.liveCodes()).filter((c) => c.method === "pin");
      code = pins.length === 1 ? pins[0] : undefined;
    } else if (isCodeId(codeId)) code = await this.#repo.liveCode(codeId);
    if (code && code.failedAttempts >= code.maxAttempts) {
      await this.#repo.exhaustCode(code.id, now, (c) => ({
        kind: "pairing.code_exhausted",
        actor: "system",
        detail: { code_id: c.codeId, failed_attempts: c.failedAttempts },
      }));
      return undefined;
    }
    return code;
  }
}
