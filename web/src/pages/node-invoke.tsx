import { type FormEvent, useState } from "react";
import { api } from "../api";
import { Badge, ErrorLine } from "../components/ui";
import type { NodeDetail } from "./node-types";

interface InvokeResult {
  request_id: string;
  state: string;
  output: unknown;
  error: string | null;
}

/** Calls one of the node's capabilities with JSON input, and shows the result. */
export function InvokeForm(props: { node: NodeDetail; onDone: () => void }) {
  const [capability, setCapability] = useState(props.node.capabilities[0]?.name ?? "");
  const [input, setInput] = useState('{"hello": "world"}');
  const [timeout, setTimeoutSeconds] = useState(30);
  const [result, setResult] = useState<InvokeResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    setResult(undefined);
    let parsed: unknown;
    try {
      parsed = input.trim() === "" ? null : JSON.parse(input);
    } catch {
      setError("The input is not valid JSON.");
      return;
    }
    setBusy(true);
    try {
      setResult(
        await api<InvokeResult>("POST", `/v1/nodes/${props.node.device_id}/invoke`, {
          capability,
          input: parsed,
          timeout_seconds: timeout,
        }),
      );
      props.onDone();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="invoke-title">
      <h3 id="invoke-title">Invoke a capability</h3>
      <div className="row">
        <label>
          Capability
          <select value={capability} onChange={(e) => setCapability(e.target.value)}>
            {props.node.capabilities.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Timeout (seconds)
          <input
            type="number"
            min={1}
            max={120}
            value={timeout}
            onChange={(e) => setTimeoutSeconds(Number(e.target.value))}
          />
        </label>
      </div>
      <label>
        Input (JSON)
        <textarea rows={4} spellCheck={false} value={input} onChange={(e) => setInput(e.target.value)} />
      </label>
      <ErrorLine error={error} />
      <button type="submit" className="primary" disabled={busy || props.node.presence === "offline"}>
        {busy ? "Running…" : "Invoke"}
      </button>
      {result && (
        <section aria-live="polite" aria-labelledby="result-title" className="result">
          <h4 id="result-title">
            Result <Badge tone={result.state === "succeeded" ? "good" : "bad"}>{result.state}</Badge>
          </h4>
          <pre data-testid="invoke-output">{result.error ?? JSON.stringify(result.output, null, 2)}</pre>
        </section>
      )}
    </form>
  );
}
