import type { Secret } from "../common/redaction.js";
import type { SecretMetadata, Vault, VaultDescription } from "./vault.js";

/** A secret's metadata as the API shows it; `backend` names where the sealed blob lives. */
export type SecretsMetadata = Omit<SecretMetadata, "backend"> & { backend: string };
export type SecretsDescription = Omit<VaultDescription, "backend"> & { backend: string };

/**
 * What the admin API needs of a vault: this host's vault (OS keyring or encrypted files), or the shared
 * vault of a cluster in its database. Asynchronous, because the shared one asks the database.
 */
export interface SecretsVault {
  describe(): Promise<SecretsDescription>;
  list(filter?: { scope?: string }): Promise<SecretsMetadata[]>;
  /** Throws VaultError not_found. */
  metadata(scope: string, key: string): Promise<SecretsMetadata>;
  has(scope: string, key: string): Promise<boolean>;
  get(scope: string, key: string): Promise<Secret<Buffer>>;
  put(scope: string, key: string, value: Uint8Array): Promise<SecretsMetadata>;
  delete(scope: string, key: string): Promise<boolean>;
}

/** This host's vault behind the same interface. */
export function hostSecretsVault(vault: Vault): SecretsVault {
  return {
    describe: async () => vault.describe(),
    list: async (filter) => vault.list(filter),
    metadata: async (scope, key) => vault.metadata(scope, key),
    has: async (scope, key) => vault.has(scope, key),
    get: (scope, key) => vault.get(scope, key),
    put: (scope, key, value) => vault.put(scope, key, value),
    delete: (scope, key) => vault.delete(scope, key),
  };
}
