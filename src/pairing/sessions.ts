import type { Clock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import type { Random } from "../common/random.js";
import type { Secret } from "../common/redaction.js";
import { PairingError } from "./errors.js";

/**
 * Live pairing sessions (Begin to Complete). In memory on purpose: they live 5 minutes, and a restart
 * that drops them only makes a device start over. State machine: begun -> exchanged -> (removed).
 */
export interface PairingSession {
  sessionId: string;
  codeRowId: string;
  codeId: string;
  clientKind: string;
  deviceId: string;
  sourceAddress: string;
  challenge: Buffer;
  createdAt: number;
  expiresAt: number;
  state: "begun" | "exchanged";
  exchange?: {
    expectedConfirmP: Buffer;
    kMain: Secret<Buffer>;
    kShared: Secret<Buffer>;
  };
}

export class SessionTable {
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #lifeMs: number;
  readonly #max: number;
  readonly #sessions = new Map<string, PairingSession>();
  readonly #byCode = new Map<string, string>();

  constructor(clock: Clock, random: Random, options: { lifeMs: number; maxLive: number }) {
    this.#clock = clock;
    this.#random = random;
    this.#lifeMs = options.lifeMs;
    this.#max = options.maxLive;
  }

  get size(): number {
    this.sweep();
    return this.#sessions.size;
  }

  /** Opens a session on a code; one in flight per code, and a bounded number overall. */
  open(
    fields: Omit<PairingSession, "sessionId" | "createdAt" | "expiresAt" | "state">,
    codeExpiresAt: number,
  ): PairingSession {
    this.sweep();
    const busyId = this.#byCode.get(fields.codeRowId);
    const busy = busyId === undefined ? undefined : this.#sessions.get(busyId);
    // The same device may start over (e.g. after a mistyped PIN); anyone else waits for the session to end.
    if (busy && busy.deviceId === fields.deviceId) this.end(busy.sessionId);
    else if (busy) throw new PairingError("code_busy", "code busy: another device is pairing with this code");
    if (this.#sessions.size >= this.#max)
      throw new PairingError("rate_limited", "too many pairing sessions in flight; try again shortly");
    const now = this.#clock.now();
    const session: PairingSession = {
      ...fields,
      sessionId: newId(this.#clock, this.#random),
      createdAt: now,
      expiresAt: Math.min(now + this.#lifeMs, codeExpiresAt),
      state: "begun",
    };
    this.#sessions.set(session.sessionId, session);
    this.#byCode.set(session.codeRowId, session.sessionId);
    return session;
  }

  /** The live session in `state`, or the one error every other case shares. */
  require(sessionId: string, state: PairingSession["state"]): PairingSession {
    const session = this.#sessions.get(sessionId);
    if (!session || this.#clock.now() >= session.expiresAt || session.state !== state) {
      if (session && this.#clock.now() >= session.expiresAt) this.end(sessionId);
      throw new PairingError(
        "session_invalid",
        "pairing session is not valid (expired or out of order); start again",
      );
    }
    return session;
  }

  end(sessionId: string): void {
    const session = this.#sessions.get(sessionId);
    if (!session) return;
    this.#sessions.delete(sessionId);
    if (this.#byCode.get(session.codeRowId) === sessionId) this.#byCode.delete(session.codeRowId);
  }

  sweep(): void {
    const now = this.#clock.now();
    for (const session of this.#sessions.values()) if (now >= session.expiresAt) this.end(session.sessionId);
  }
}
