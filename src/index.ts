/**
 * Palyra's public library API: what a TypeScript service embedding Palyra's identity layer needs.
 * Kept small on purpose; everything else is internal and may change.
 */

export type { Clock } from "./common/clock.js";
export { ManualClock, systemClock } from "./common/clock.js";
export { ExitCode, PalyraError } from "./common/errors.js";
export { isCanonicalId } from "./common/ids.js";
export type { Random } from "./common/random.js";
export { systemRandom } from "./common/random.js";
export { Secret } from "./common/redaction.js";
export { certificateFingerprint, identityFingerprint, spkiFingerprint } from "./crypto/fingerprint.js";
export type { IssuedCertificate } from "./identity/ca.js";
export { CertificateAuthority } from "./identity/ca.js";
export { createCsr, generateP256KeyPair, parseAndVerifyCsr } from "./identity/csr.js";
export { DeviceIdentity, verifyIdentitySignature } from "./identity/device-identity.js";
export type { DeviceRepository, PairedDevice } from "./identity/device-records.js";
export type { PeerDecision, PeerRefusal } from "./identity/device-registry.js";
export { DeviceRegistry } from "./identity/device-registry.js";
export { FilesystemSecretStore, openFilesystemSecretStore } from "./identity/filesystem-secret-store.js";
export { describeSecretStore } from "./identity/key-protection.js";
export type { SecretStore } from "./identity/secret-store.js";
export { InMemorySecretStore } from "./identity/secret-store.js";
export { verifyIssuedBy } from "./identity/verify-chain.js";
export { openGatewayStore } from "./store/gateway-store.js";
