import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";

/** One entry per command path ("" is the top level): its subcommands and its long options. */
interface Node {
  path: string;
  subcommands: string[];
  options: string[];
}

function walk(command: Command, path: string, out: Node[]): void {
  const subcommands = command.commands.map((c) => c.name());
  const options = command.options.map((o) => o.long).filter((o): o is string => o !== undefined);
  out.push({ path, subcommands, options: [...options, "--help"] });
  for (const sub of command.commands) walk(sub, path ? `${path} ${sub.name()}` : sub.name(), out);
}

/**
 * Bash: the words typed so far (options skipped) name a command path; complete its subcommands, or
 * its options once the word starts with "-". The table is generated from the CLI itself, so it never
 * drifts from the commands.
 */
function bash(nodes: Node[]): string {
  const cases = nodes
    .map(
      (n) =>
        `    "${n.path}") words="${[...n.subcommands, ...n.options].join(" ")}"; subs="${n.subcommands.join(" ")}" ;;`,
    )
    .join("\n");
  return `# palyra bash completion: source <(palyra completion bash)
_palyra() {
  local cur path word words subs i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    _palyra_lookup "\${path:+$path }$word" && path="\${path:+$path }$word"
  done
  _palyra_lookup "$path"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${subs:-$words}" -- "$cur"))
  fi
}
_palyra_lookup() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
complete -o default -F _palyra palyra
`;
}

function fish(nodes: Node[]): string {
  const lines = ["# palyra fish completion: palyra completion fish | source", "complete -c palyra -f"];
  for (const n of nodes) {
    const parts = n.path === "" ? [] : n.path.split(" ");
    const condition =
      parts.length === 0
        ? "__fish_use_subcommand"
        : `__fish_seen_subcommand_from ${parts.at(-1)}${parts.length > 1 ? `; and __fish_seen_subcommand_from ${parts[0]}` : ""}`;
    for (const sub of n.subcommands) lines.push(`complete -c palyra -n '${condition}' -a ${sub}`);
    for (const option of n.options) lines.push(`complete -c palyra -n '${condition}' -l ${option.slice(2)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** zsh reads the bash completion through bashcompinit. */
function zsh(nodes: Node[]): string {
  return `# palyra zsh completion: source <(palyra completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(nodes)}`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion <shell>")
    .description("print shell completion for bash, zsh or fish (e.g. source <(palyra completion bash))")
    .action((shell: string) => {
      const nodes: Node[] = [];
      walk(program, "", nodes);
      const render = { bash, zsh, fish }[shell as "bash" | "zsh" | "fish"];
      if (!render) throw new CommonError("invalid_input", "the shell is bash, zsh or fish");
      process.stdout.write(render(nodes));
    });
}
