import type { KeyObject } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { CertificateAuthority, IssuedCertificate } from "../identity/ca.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";

export interface ServerIdentity {
  certificate: IssuedCertificate;
  /** PEM chain (leaf then CA) and key, ready for tls.createSecureContext. */
  certChainPem: string;
  keyPem: string;
}

/**
 * The gateway's TLS server certificate. Its key lives only in memory (a restart simply issues a new
 * one); it is renewed at 2/3 of its life and listeners hot-swap it without a restart.
 */
export class ServerCertificateManager {
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #names: { dnsNames: string[]; ipAddresses: string[] };
  readonly #listeners = new Set<(identity: ServerIdentity) => void>();
  #current: ServerIdentity | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(ca: CertificateAuthority, clock: Clock, names: { dnsNames: string[]; ipAddresses: string[] }) {
    this.#ca = ca;
    this.#clock = clock;
    this.#names = names;
  }

  current(): ServerIdentity {
    if (!this.#current) throw new Error("server certificate not issued yet");
    return this.#current;
  }

  onRenew(listener: (identity: ServerIdentity) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async issue(): Promise<ServerIdentity> {
    const { privateKey, publicKey } = generateP256KeyPair();
    const csr = await createCsr(privateKey, publicKey);
    const certificate = await this.#ca.issueServerCertificate(csr, {
      dnsNames: this.#names.dnsNames,
      ipAddresses: this.#names.ipAddresses,
    });
    this.#current = {
      certificate,
      certChainPem: certificate.pem + this.#ca.certPem,
      keyPem: pemOf(privateKey),
    };
    for (const listener of this.#listeners) listener(this.#current);
    return this.#current;
  }

  /** Milliseconds until the current certificate is due for renewal (2/3 of its life). */
  msUntilRenewal(): number {
    const { notBefore, notAfter } = this.current().certificate;
    const life = notAfter.getTime() - notBefore.getTime();
    return Math.max(0, notBefore.getTime() + life * limits.renewAtFraction - this.#clock.now());
  }

  /** Renews on schedule until stopped; a failed renewal is retried in a minute (the old one is still valid). */
  start(onError: (err: unknown) => void): void {
    const schedule = (ms: number) => {
      this.#timer = setTimeout(
        () => {
          this.issue().then(
            () => schedule(this.msUntilRenewal()),
            (err) => {
              onError(err);
              schedule(60_000);
            },
          );
        },
        Math.min(ms, 2 ** 31 - 1),
      );
      this.#timer.unref();
    };
    schedule(this.msUntilRenewal());
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function pemOf(privateKey: KeyObject): string {
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}
