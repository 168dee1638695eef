import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { inspect } from "node:util";
import { ed25519 } from "@noble/curves/ed25519.js";
import type { Clock } from "../common/clock.js";
import { assertCanonicalId, newId } from "../common/ids.js";
import type { Random } from "../common/random.js";
import { identityFingerprint } from "../crypto/fingerprint.js";
import { IdentityError } from "./errors.js";
import type { SecretStore } from "./secret-store.js";

const IDENTITY_KEY = "device/identity";
const RECORD_VERSION = 1;

/**
 * A device's long-lived identity: a canonical ULID and an Ed25519 key pair generated on the device.
 * The private key never leaves the device's secret store; the gateway keeps the public key and checks
 * it on pairing, status polls and renewals.
 */
export class DeviceIdentity {
  readonly deviceId: string;
  readonly publicKey: Buffer;
  readonly fingerprint: string;
  readonly #privateKey: KeyObject;

  private constructor(deviceId: string, privateKey: KeyObject) {
    this.deviceId = deviceId;
    this.#privateKey = privateKey;
    this.publicKey = rawEd25519PublicKey(createPublicKey(privateKey));
    this.fingerprint = identityFingerprint(this.publicKey);
  }

  static generate(clock: Clock, random: Random): DeviceIdentity {
    const { privateKey } = generateKeyPairSync("ed25519");
    return new DeviceIdentity(newId(clock, random), privateKey);
  }

  sign(message: Uint8Array): Buffer {
    return sign(null, message, this.#privateKey);
  }

  async save(store: SecretStore, key = IDENTITY_KEY): Promise<void> {
    const record = {
      version: RECORD_VERSION,
      deviceId: this.deviceId,
      privateKey: this.#privateKey.export({ type: "pkcs8", format: "der" }).toString("base64"),
    };
    await store.write(key, Buffer.from(JSON.stringify(record), "utf8"));
  }

  /** Deletes the stored identity (a device that must pair again as a new device). */
  static async forget(store: SecretStore, key = IDENTITY_KEY): Promise<void> {
    await store.delete(key);
  }

  static async load(store: SecretStore, key = IDENTITY_KEY): Promise<DeviceIdentity | undefined> {
    const bytes = await store.read(key);
    if (bytes === undefined) return undefined;
    let record: { version?: unknown; deviceId?: unknown; privateKey?: unknown };
    try {
      record = JSON.parse(bytes.toString("utf8"));
    } catch (err) {
      throw new IdentityError("secret_store_corrupt", "the stored device identity is not valid JSON", {
        cause: err,
      });
    }
    if (record.version !== RECORD_VERSION || typeof record.privateKey !== "string")
      throw new IdentityError("secret_store_corrupt", "the stored device identity has an unknown shape");
    const deviceId = assertCanonicalId(record.deviceId, "stored device id");
    const privateKey = createPrivateKey({
      key: Buffer.from(record.privateKey, "base64"),
      format: "der",
      type: "pkcs8",
    });
    if (privateKey.asymmetricKeyType !== "ed25519")
      throw new IdentityError("secret_store_corrupt", "the stored device identity key is not Ed25519");
    return new DeviceIdentity(deviceId, privateKey);
  }

  /** Loads the identity, creating and storing a new one on first use. */
  static async loadOrCreate(
    store: SecretStore,
    clock: Clock,
    random: Random,
    key = IDENTITY_KEY,
  ): Promise<DeviceIdentity> {
    const existing = await DeviceIdentity.load(store, key);
    if (existing) return existing;
    const created = DeviceIdentity.generate(clock, random);
    await created.save(store, key);
    return created;
  }

  toJSON(): { deviceId: string; fingerprint: string } {
    return { deviceId: this.deviceId, fingerprint: this.fingerprint };
  }

  [inspect.custom](): string {
    return `DeviceIdentity(${this.deviceId}, ${this.fingerprint.slice(0, 16)}…)`;
  }
}

/** Raw 32-byte Ed25519 public key from a KeyObject (the last 32 bytes of its SPKI DER). */
export function rawEd25519PublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== "ed25519")
    throw new IdentityError("unsupported_key", "not an Ed25519 key");
  return publicKey.export({ type: "spki", format: "der" }).subarray(-32);
}

/**
 * True for a canonical encoding of an Ed25519 point of more than small order. OpenSSL (and so
 * `crypto.verify`) accepts a small-order key such as `01 00..00`, for which one signature verifies for
 * every message: such a "key" binds nothing, so it is refused wherever a device presents one. Non-
 * canonical encodings (y >= p, or x = 0 with the sign bit set) are refused too, so one key has one
 * encoding. A key with a small-order component added still binds its private scalar, so the full
 * subgroup check (a 2 ms scalar multiplication) is not paid for. Any RFC 8032 key passes.
 */
export function isValidIdentityKey(rawPublicKey: Uint8Array): boolean {
  if (rawPublicKey.length !== 32) return false;
  try {
    const point = ed25519.Point.fromBytes(rawPublicKey, false);
    return !point.isSmallOrder();
  } catch {
    return false;
  }
}

/**
 * Verifies an Ed25519 signature by a raw 32-byte public key; malformed input, and a key that
 * `isValidIdentityKey` refuses, is simply "not valid".
 */
export function verifyIdentitySignature(
  rawPublicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (rawPublicKey.length !== 32 || signature.length !== 64 || !isValidIdentityKey(rawPublicKey))
    return false;
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), rawPublicKey]);
  try {
    return verify(null, message, { key: spki, format: "der", type: "spki" }, signature);
  } catch {
    return false;
  }
}
