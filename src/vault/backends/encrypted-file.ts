import type { BlobBackend } from "./blob-backend.js";
import { BlobFiles } from "./blob-files.js";

/**
 * Sealed blobs as plain files. The blobs are already encrypted by the vault key; what this backend
 * cannot give is a safe home for that key, which then lives in a key file (weak) or behind a passphrase
 * (vault-key.ts).
 */
export class EncryptedFileBackend extends BlobFiles implements BlobBackend {
  readonly kind = "encrypted-file" as const;
}
