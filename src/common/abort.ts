/**
 * Runs `onAbort` once if `signal` aborts before `until` settles (at once if it already has). The
 * listener goes when `until` settles, so a signal that outlives many calls (a connection's) does not
 * collect one per call.
 */
export function onAbortUntil(
  signal: AbortSignal | undefined,
  until: Promise<unknown>,
  onAbort: () => void,
): void {
  if (!signal) return;
  if (signal.aborted) {
    onAbort();
    return;
  }
  signal.addEventListener("abort", onAbort, { once: true });
  const remove = () => signal.removeEventListener("abort", onAbort);
  until.then(remove, remove);
}
