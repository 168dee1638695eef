import { main } from "./main.js";

/** Process entry point (bin/palyra.js and `tsx src/cli/run.ts`). */
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
