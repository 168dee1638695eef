import type { Clock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import type { Random } from "../common/random.js";
import type { Secret } from "../common/redaction.js";
import { PairingError } from "./errors.js";

/**
 * Live pairing sessions (Begin to Complete). In memory on purpose: they live 5 minutes, and a restart
 * that drops them only makes a device start over. State machine: begun -> exchanged -> (removed).
 *
 * A session never locks its code. Begin proves nothing (the code id is not secret, and an empty one
 * names the only live PIN code), so a code that one session could hold would let anyone who knows
 * nothing lock the real device out. Several sessions may be open per code instead; what is scarce is
 * attempts, and those are counted on the code itself at Exchange (see PairingGatewayService).
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
  readonly #maxPerCode: number;
  readonly #sessions = new Map<string, PairingSession>();
  /** Sessions per code, oldest first (a Set keeps insertion order). */
  readonly #byCode = new Map<string, Set<string>>();

  constructor(
    clock: Clock,
    random: Random,
    options: { lifeMs: number; maxLive: number; maxPerCode: number },
  ) {
    this.#clock = clock;
    this.#random = random;
    this.#lifeMs = options.lifeMs;
    this.#max = options.maxLive;
    this.#maxPerCode = options.maxPerCode;
  }

  get size(): number {
    this.sweep();
    return this.#sessions.size;
  }

  /** Sessions open on one code (for tests and metrics). */
  sessionsFor(codeRowId: string): number {
    return this.#byCode.get(codeRowId)?.size ?? 0;
  }

  /**
   * Opens a session on a code. At the per-code bound the oldest session that has not exchanged yet
   * makes room: a device's own session is milliseconds old when it exchanges, so a flood of Begins
   * (rate limited per address) cannot push it out in time, while idle squatters are pushed out first.
   */
  open(
    fields: Omit<PairingSession, "sessionId" | "createdAt" | "expiresAt" | "state">,
    codeExpiresAt: number,
  ): PairingSession {
    this.sweep();
    const onCode = this.#byCode.get(fields.codeRowId);
    if (onCode && onCode.size >= this.#maxPerCode) {
      const oldestBegun = [...onCode].find((id) => this.#sessions.get(id)?.state === "begun");
      if (oldestBegun === undefined)
        throw new PairingError("rate_limited", "too many pairing sessions on this code; try again shortly");
      this.end(oldestBegun);
    }
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
    let set = this.#byCode.get(session.codeRowId);
    if (!set) {
      set = new Set();
      this.#byCode.set(session.codeRowId, set);
    }
    set.add(session.sessionId);
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
    const set = this.#byCode.get(session.codeRowId);
    set?.delete(sessionId);
    if (set?.size === 0) this.#byCode.delete(session.codeRowId);
  }

  /** Ends every session on a code (it was used, or it died). */
  endCode(codeRowId: string): void {
    for (const sessionId of this.#byCode.get(codeRowId) ?? []) this.end(sessionId);
  }

  sweep(): void {
    const now = this.#clock.now();
    for (const session of this.#sessions.values()) if (now >= session.expiresAt) this.end(session.sessionId);
  }
}
