import { Fragment, useEffect, useState } from "react";
import { commandSegments } from "../format";

/** Copies `text` to the clipboard and says so (or, if the browser refuses, how to copy it by hand). */
export function CopyButton(props: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 3000);
    return () => clearTimeout(timer);
  }, [state]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setState("copied");
    } catch {
      setState("failed");
    }
  };
  return (
    <span className="copy">
      <button type="button" onClick={() => void copy()}>
        {props.label}
      </button>
      <span role="status" className="muted">
        {state === "copied" ? "Copied" : state === "failed" ? "Select the text and copy it" : ""}
      </span>
    </span>
  );
}

/**
 * A shell command that wraps only between its arguments: each flag stays on one line with its value. A
 * value too long for any line (a QR URI) is the one thing allowed to break, anywhere inside it.
 */
export function Command(props: { command: string; label: string }) {
  return (
    <figure className="command">
      <figcaption>{props.label}</figcaption>
      <code>
        {commandSegments(props.command).map((segment, i) => {
          const space = segment.indexOf(" ");
          const long = segment.length > 40 && space > 0;
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: segments of one fixed string, in order
            <Fragment key={i}>
              {i > 0 && " "}
              {long ? (
                <>
                  <span className="arg">{segment.slice(0, space)}</span>{" "}
                  <span className="arg long">{segment.slice(space + 1)}</span>
                </>
              ) : (
                <span className={segment.length > 40 ? "arg long" : "arg"}>{segment}</span>
              )}
            </Fragment>
          );
        })}
      </code>
      <CopyButton text={props.command} label="Copy command" />
    </figure>
  );
}
