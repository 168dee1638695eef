/** A one-line spinner on stderr with the time left; silent when stderr is not a terminal. */
export class Spinner {
  readonly #frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;

  start(text: () => string): void {
    if (!process.stderr.isTTY) return;
    this.#timer = setInterval(() => {
      process.stderr.write(`\r${this.#frames[this.#frame++ % this.#frames.length]} ${text()}\x1b[K`);
    }, 100);
    this.#timer.unref();
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    process.stderr.write("\r\x1b[K");
  }
}

export function formatRemaining(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
