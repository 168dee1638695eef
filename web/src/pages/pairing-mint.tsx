import { type FormEvent, useState } from "react";
import { api } from "../api";
import { Command, CopyButton } from "../components/copy";
import { ErrorLine } from "../components/ui";
import { timeLeft } from "../format";

export interface Minted {
  code_id: string;
  method: "pin" | "qr";
  client_kind: string;
  expires_at: string;
  typed?: string;
  qr_uri?: string;
  qr_svg?: string;
  /** host:port devices dial (the node port). */
  gateway?: string;
  device_command: string;
}
export interface Code {
  code_id: string;
  method: string;
  client_kind: string;
  state: "live" | "used" | "exhausted" | "expired";
  expires_at: string;
  failed_attempts: number;
  max_attempts: number;
}

export function MintForm(props: { onMinted: (m: Minted) => void }) {
  const [method, setMethod] = useState<"pin" | "qr">("pin");
  const [kind, setKind] = useState("node");
  const [ttl, setTtl] = useState(10);
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      props.onMinted(
        await api<Minted>("POST", "/v1/pairing/codes", { method, client_kind: kind, ttl_seconds: ttl * 60 }),
      );
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="mint-title">
      <h2 id="mint-title">New pairing code</h2>
      <fieldset>
        <legend>Method</legend>
        <label>
          <input type="radio" name="method" checked={method === "pin"} onChange={() => setMethod("pin")} />{" "}
          PIN
        </label>
        <label>
          <input type="radio" name="method" checked={method === "qr"} onChange={() => setMethod("qr")} /> QR
          code
        </label>
      </fieldset>
      <div className="row">
        <label>
          Device kind
          <select value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="node">node</option>
            <option value="cli">cli</option>
            <option value="desktop">desktop</option>
          </select>
        </label>
        <label>
          Valid for (minutes)
          <input
            type="number"
            min={1}
            max={1440}
            value={ttl}
            onChange={(e) => setTtl(Number(e.target.value))}
          />
        </label>
      </div>
      <ErrorLine error={error} />
      <button type="submit" className="primary">
        Create code
      </button>
    </form>
  );
}

const ENDED: Record<Exclude<Code["state"], "live">, string> = {
  used: "Used: a device has paired with this code. It cannot be used again.",
  exhausted: "No longer valid: too many wrong attempts.",
  expired: "Expired before a device used it.",
};

/**
 * The code just minted, shown once: the PIN or QR code with the command to run on the device while the
 * code is live; once it is used, exhausted or expired, only what became of it.
 */
export function MintedCode(props: {
  minted: Minted;
  code: Code | undefined;
  now: number;
  onDone: () => void;
}) {
  const { minted } = props;
  const expired = Date.parse(minted.expires_at) <= props.now;
  const state = props.code?.state ?? (expired ? "expired" : "live");
  const ended = state !== "live" ? state : expired ? "expired" : undefined;
  return (
    <section className="card minted" aria-labelledby="minted-title" aria-live="polite">
      <h2 id="minted-title">
        {minted.method === "pin" ? "PIN" : "QR code"} {minted.code_id} (shown once)
      </h2>
      {ended ? (
        <p role="status" className="ended">
          {ENDED[ended]}
        </p>
      ) : (
        <>
          {minted.typed && (
            <output className="pin" aria-label="PIN to type on the device">
              {minted.typed}
            </output>
          )}
          {minted.qr_uri && minted.qr_svg && (
            <>
              <img
                className="qr"
                alt="QR code to scan with the device"
                src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(minted.qr_svg)}`}
              />
              <label>
                Or paste this URI on the device
                <textarea
                  className="uri"
                  readOnly
                  rows={3}
                  spellCheck={false}
                  value={minted.qr_uri}
                  onFocus={(e) => e.target.select()}
                />
              </label>
              <CopyButton text={minted.qr_uri} label="Copy URI" />
            </>
          )}
          <p>Expires in {timeLeft(minted.expires_at, props.now)}.</p>
          <Command command={minted.device_command} label="On the device, run:" />
        </>
      )}
      <button type="button" onClick={props.onDone}>
        Hide
      </button>
    </section>
  );
}
