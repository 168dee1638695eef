import { z } from "zod";
import { BACKEND_KINDS } from "./backends/blob-backend.js";

/**
 * What a vault records about itself (one JSON row in vault.db): its id, which key seals it, where new
 * blobs go, how that was chosen, and every place the vault key is kept. During a migration there are
 * two homes; afterwards, one.
 */

const backendKind = z.enum(BACKEND_KINDS);

export const keyHomeSchema = z.discriminatedUnion("kind", [
  /** Stored in an OS backend as the blob `vk_<vault id>`. */
  z.object({ kind: z.literal("backend"), backend: backendKind }).strict(),
  /** 32 raw bytes in a 0600 file in the vault directory (weak: readable by anyone who can read it). */
  z.object({ kind: z.literal("key-file"), file: z.literal("vault.key") }).strict(),
  /** Sealed in a file by a key derived from PALYRA_VAULT_PASSPHRASE with scrypt. */
  z
    .object({
      kind: z.literal("passphrase"),
      file: z.literal("vault-key.sealed"),
      salt: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
      N: z
        .number()
        .int()
        .min(2)
        .max(2 ** 24),
      r: z.number().int().min(1).max(64),
      p: z.number().int().min(1).max(16),
    })
    .strict(),
]);
export type KeyHome = z.infer<typeof keyHomeSchema>;

export const settingsSchema = z
  .object({
    version: z.literal(1),
    vault_id: z.string().regex(/^[0-9a-f]{32}$/),
    key_id: z.string().regex(/^[0-9a-f]{16}$/),
    backend: backendKind,
    selected_at: z.number().int(),
    /** `auto`: the OS store passed its probe; `fallback`: it did not; `env`: PALYRA_VAULT_BACKEND; `migrate`. */
    selected_by: z.enum(["auto", "fallback", "env", "migrate"]),
    probe: z
      .object({ backend: backendKind, ok: z.boolean(), ms: z.number(), reason: z.string().optional() })
      .strict()
      .nullable(),
    key_homes: z.array(keyHomeSchema).min(1).max(4),
  })
  .strict();
export type VaultSettings = z.infer<typeof settingsSchema>;
