/**
 * How the console writes times. Every date on every page goes through `when`: `YYYY-MM-DD HH:MM:SS`
 * in the browser's local time, the same on every page whatever the browser's locale.
 */

const pad = (n: number) => String(n).padStart(2, "0");

export function when(iso: string | null | undefined): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "-";
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** Time until `iso`, for countdowns: `9:58`, or `2 h 5 min` past an hour; `expired` once past. */
export function timeLeft(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return "expired";
  const s = Math.ceil(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Time since `iso`, for presence (`4 s ago`); shown with `when` of the same time beside or as a title. */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function short(fingerprint: string): string {
  return `${fingerprint.slice(0, 8)}…${fingerprint.slice(-4)}`;
}

/**
 * A shell command split into the pieces that may not be broken across lines: each flag with its value
 * (`--gateway 127.0.0.1:7444`) and each other word. Quoted words stay whole.
 */
export function commandSegments(command: string): string[] {
  const words = command.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  const segments: string[] = [];
  for (const word of words) {
    const last = segments[segments.length - 1];
    if (last !== undefined && /^--?[a-z]/i.test(last) && !last.includes(" ") && !word.startsWith("-"))
      segments[segments.length - 1] = `${last} ${word}`;
    else segments.push(word);
  }
  return segments;
}

/** Lower-cased text a search box matches against. */
export function matches(needle: string, ...fields: (string | null | undefined)[]): boolean {
  const wanted = needle.trim().toLowerCase();
  return !wanted || fields.some((f) => (f ?? "").toLowerCase().includes(wanted));
}
