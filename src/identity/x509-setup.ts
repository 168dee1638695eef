/**
 * The one place that loads @peculiar/x509. It needs `reflect-metadata` loaded before it (its
 * dependency-injection container reads decorator metadata at import time) and a WebCrypto provider;
 * we give it Node's. Every other module imports `x509` from here, never from the package directly, so
 * the setup always runs first.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

// The library types WebCrypto with the DOM's global `Crypto`, which this Node-only project does not load.
x509.cryptoProvider.set(webcrypto as never);

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export { x509 };

/** WebCrypto parameters for importing and generating ECDSA P-256 keys. */
export const P256_KEY_PARAMS = Object.freeze({ name: "ECDSA", namedCurve: "P-256" });
/** WebCrypto parameters for ECDSA signatures with SHA-256 (ecdsa-with-SHA256). */
export const ECDSA_SHA256 = Object.freeze({ name: "ECDSA", hash: "SHA-256" });
/** PEM label OpenSSL and Node's `crl:` option accept (the library writes `BEGIN CRL`, which they reject). */
export const CRL_PEM_LABEL = "X509 CRL";
