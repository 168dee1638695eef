import type { AuditRecord } from "../common/audit.js";

/**
 * Counters for `/metrics` since the daemon started, fed by the audit log (each change is audited once,
 * in its own transaction) and by refused connections. Labels are fixed words, never ids or names.
 */
export interface CounterFamily {
  name: string;
  help: string;
  samples: [labels: Record<string, string>, value: number][];
}

const FAMILIES = {
  pairings: { name: "palyra_pairings_total", help: "Pairing requests decided or delivered, by outcome" },
  failedAttempts: {
    name: "palyra_pairing_failed_attempts_total",
    help: "Pairing exchanges that failed the code's proof (wrong code)",
  },
  invocations: { name: "palyra_invocations_total", help: "Capability calls by how they ended" },
  revocations: { name: "palyra_revocations_total", help: "Devices revoked" },
  refused: {
    name: "palyra_refused_connections_total",
    help: "Node-port and QUIC connections refused, by reason",
  },
  certificates: {
    name: "palyra_client_certificates_issued_total",
    help: "Client certificates issued, by occasion (pairing, renewal, recovery)",
  },
} as const;

type FamilyKey = keyof typeof FAMILIES;
const WORD = /^[a-z_]{1,40}$/;

export class EventCounters {
  readonly #counts = new Map<FamilyKey, Map<string, number>>();

  #add(family: FamilyKey, label = ""): void {
    let samples = this.#counts.get(family);
    if (!samples) {
      samples = new Map();
      this.#counts.set(family, samples);
    }
    // A label outside the fixed vocabulary is counted as "other", so no value can grow the series.
    const key = label === "" || WORD.test(label) ? label : "other";
    samples.set(key, (samples.get(key) ?? 0) + 1);
  }

  audit(record: AuditRecord): void {
    switch (record.kind) {
      case "pairing.approved":
        this.#add("pairings", "approved");
        this.#add("certificates", "pairing");
        break;
      case "pairing.rejected":
      case "pairing.expired":
      case "pairing.completed":
        this.#add("pairings", record.kind.slice("pairing.".length));
        break;
      case "pairing.failed_attempt":
      case "pairing.code_exhausted":
        this.#add("failedAttempts");
        break;
      case "node.invoked":
        this.#add("invocations", String(record.detail?.state ?? "unknown"));
        break;
      case "device.revoked":
        this.#add("revocations");
        break;
      case "device.certificate_rotated":
        this.#add("certificates", "renewal");
        break;
      case "device.certificate_recovered":
        this.#add("certificates", "recovery");
        break;
    }
  }

  refused(reason: string): void {
    this.#add("refused", reason);
  }

  families(): CounterFamily[] {
    return (Object.keys(FAMILIES) as FamilyKey[]).map((key) => {
      const label =
        key === "pairings"
          ? "outcome"
          : key === "invocations"
            ? "state"
            : key === "refused"
              ? "reason"
              : "occasion";
      const samples = [...(this.#counts.get(key) ?? new Map<string, number>())].map(
        ([value, count]) =>
          [value === "" ? {} : { [label]: value }, count] as [Record<string, string>, number],
      );
      return { ...FAMILIES[key], samples: samples.length ? samples : [[{}, 0]] };
    });
  }
}
