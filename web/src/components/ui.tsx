import { type ReactNode, useEffect, useRef, useState } from "react";
import { ago, when } from "../format";

/**
 * A button that asks before it acts, in a native <dialog> (focus is trapped and Escape cancels). The
 * action's error, if any, is shown in the dialog.
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  children?: ReactNode;
  confirmLabel?: string;
  danger?: boolean;
  onConfirm: () => Promise<unknown>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const d = dialog.current;
    const reset = () => setError(undefined);
    d?.addEventListener("close", reset);
    return () => d?.removeEventListener("close", reset);
  }, []);
  const confirm = async () => {
    setBusy(true);
    try {
      await props.onConfirm();
      dialog.current?.close();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className={props.danger ? "danger" : ""}
        onClick={() => dialog.current?.showModal()}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${props.title}-title`}>
        <h3 id={`${props.title}-title`}>{props.title}</h3>
        {props.children}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button
            type="button"
            className={props.danger ? "danger" : "primary"}
            disabled={busy}
            onClick={confirm}
          >
            {props.confirmLabel ?? props.label}
          </button>
        </div>
      </dialog>
    </>
  );
}

export function Badge(props: { tone: "good" | "warn" | "bad" | "muted"; children: ReactNode }) {
  return <span className={`badge ${props.tone}`}>{props.children}</span>;
}

export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function ErrorLine(props: { error: string | undefined }) {
  return props.error ? (
    <p role="alert" className="error">
      {props.error}
    </p>
  ) : null;
}

/** A table that may scroll sideways on a narrow screen: a labelled region keyboard users can reach. */
export function TableWrap(props: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be focusable to scroll by keyboard
    <section className="table-wrap" aria-label={props.label} tabIndex={0}>
      {props.children}
    </section>
  );
}

/** A search box that filters a list as one types; `count` says how many of how many are shown. */
export function SearchBox(props: {
  label: string;
  placeholder: string;
  value: string;
  onChange: (value: string) => void;
  count: { shown: number; total: number };
}) {
  return (
    <div className="search">
      <label>
        {props.label}
        <input
          type="search"
          value={props.value}
          placeholder={props.placeholder}
          onChange={(e) => props.onChange(e.target.value)}
        />
      </label>
      <span className="muted" role="status">
        {props.value.trim() ? `${props.count.shown} of ${props.count.total} shown` : ""}
      </span>
    </div>
  );
}

/** A time as how long ago, with the date itself beneath (the one date format, from format.ts). */
export function Seen(props: { at: string | null | undefined; now: number }) {
  return (
    <>
      {ago(props.at, props.now)}
      <div className="muted">{when(props.at)}</div>
    </>
  );
}

/** Under a paged list: how much is shown, a "Show more" while the page can grow, else a hint. */
export function MoreRows(props: {
  shown: number;
  total: number;
  more: (() => void) | undefined;
  capped: boolean;
}) {
  if (props.shown >= props.total) return null;
  return (
    <p className="more-rows">
      <span className="muted" role="status">
        Showing {props.shown} of {props.total}.
      </span>{" "}
      {props.more ? (
        <button type="button" onClick={props.more}>
          Show more
        </button>
      ) : (
        props.capped && <span className="muted">Search to narrow the list.</span>
      )}
    </p>
  );
}
