import { linkSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { fsyncDirectory, readFileLimited, writeFileAtomic } from "../common/atomic-file.js";
import type { Random } from "../common/random.js";
import { IdentityError } from "./errors.js";

/**
 * `store.json` in a filesystem secret store: which key-encryption-key (KEK) mode the store was created
 * with (and the non-secret parameters that mode needs), plus a key check value (an envelope sealed under
 * the KEK) so that a wrong KEK is reported as such and not as tampering. Never contains key material.
 */

export const METADATA_FILE = "store.json";
const MAX_METADATA_BYTES = 16 * 1024;
const B64URL = /^[A-Za-z0-9_-]+$/;

const keyringKek = z.strictObject({
  mode: z.literal("keyring"),
  service: z.string().min(1).max(200),
  account: z.string().min(1).max(200),
});
const passphraseKek = z.strictObject({
  mode: z.literal("passphrase"),
  kdf: z.literal("scrypt"),
  salt: z.string().regex(B64URL).min(16).max(64),
  N: z
    .number()
    .int()
    .min(2)
    .max(2 ** 22),
  r: z.number().int().min(1).max(64),
  p: z.number().int().min(1).max(16),
});
const keyFileKek = z.strictObject({
  mode: z.literal("key-file"),
  /** Relative to the store directory, so the store and its key file can move together. */
  path: z.string().min(1).max(4096),
});

const metadataSchema = z.strictObject({
  format: z.literal("palyra-secret-store"),
  version: z.literal(1),
  createdAt: z.iso.datetime(),
  kek: z.discriminatedUnion("mode", [keyringKek, passphraseKek, keyFileKek]),
  /** base64url of the key check envelope. */
  check: z.string().regex(B64URL).max(1024),
});

export type SecretStoreMetadata = z.infer<typeof metadataSchema>;
export type KekDescriptor = SecretStoreMetadata["kek"];
export type KekMode = KekDescriptor["mode"];

/** What `palyra doctor` shows about a store without unlocking it. */
export interface SecretStoreDescription {
  path: string;
  mode: KekMode;
  /** Key-file mode is weak: the key sits on the same disk as the secrets it protects. */
  weak: boolean;
  /** ISO-8601 creation time. */
  created: string;
  /** Absolute key file path (key-file mode). */
  keyFile?: string;
  /** Keyring account holding the KEK (keyring mode). */
  keyringAccount?: string;
}

/** Reads and validates `store.json`; undefined when the store has none yet. */
export function readMetadata(dir: string): SecretStoreMetadata | undefined {
  const path = join(dir, METADATA_FILE);
  let raw: Buffer;
  try {
    raw = readFileLimited(path, MAX_METADATA_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new IdentityError("secret_store_corrupt", `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new IdentityError("secret_store_corrupt", `${path} is not valid JSON`, { cause: err });
  }
  const parsed = metadataSchema.safeParse(json);
  if (!parsed.success)
    throw new IdentityError("secret_store_corrupt", `${path} is not a valid secret store description`, {
      cause: parsed.error,
    });
  return parsed.data;
}

/**
 * Creates `path` with `data` only if nothing exists there yet, even against a concurrent creator: a
 * durable temp file, then a hard link (which fails if the name exists). Returns false if it existed.
 */
export function createFileExclusive(path: string, data: Uint8Array | string, random: Random): boolean {
  const temp = join(dirname(path), `.${basename(path)}.${random.bytes(6).toString("hex")}.tmp`);
  writeFileAtomic(temp, data);
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new IdentityError("secret_store_unavailable", `cannot create ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    unlinkSync(temp);
    fsyncDirectory(dirname(path));
  }
}

/** Writes `store.json` unless another process created the store first (then returns false). */
export function createMetadataExclusive(dir: string, metadata: SecretStoreMetadata, random: Random): boolean {
  const text = `${JSON.stringify(metadataSchema.parse(metadata), null, 2)}\n`;
  return createFileExclusive(join(dir, METADATA_FILE), text, random);
}

export function describeFromMetadata(dir: string, metadata: SecretStoreMetadata): SecretStoreDescription {
  const { kek } = metadata;
  const description: SecretStoreDescription = {
    path: dir,
    mode: kek.mode,
    weak: kek.mode === "key-file",
    created: metadata.createdAt,
  };
  if (kek.mode === "key-file") description.keyFile = join(dir, kek.path);
  if (kek.mode === "keyring") description.keyringAccount = kek.account;
  return description;
}
