import { CommonError } from "./errors.js";
import { limits } from "./limits.js";

/**
 * How deeply JSON text nests arrays and objects, found by scanning the text before it is parsed (parsing
 * and re-serialising deep input recurse, and overflowing the stack turned bad input into a 500). Brackets
 * inside strings do not count. Text that is not JSON is measured all the same: the parse that follows
 * refuses it.
 */
export function jsonDepthExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped, whatever it is
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON.parse for outside input, refusing nesting past `limits.maxJsonDepth` (plus `envelopeLevels`, the
 * levels of a request's own wrapping) as invalid input. `what` names the input in the message.
 */
export function parseBoundedJson(text: string, what: string, envelopeLevels = 0): unknown {
  if (jsonDepthExceeds(text, limits.maxJsonDepth + envelopeLevels))
    throw new CommonError("invalid_input", `${what} is nested deeper than ${limits.maxJsonDepth} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new CommonError("invalid_input", `${what} is not valid JSON`);
  }
}
