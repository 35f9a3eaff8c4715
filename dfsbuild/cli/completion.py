"""``dfsbuild completion bash|zsh|fish``: shell completion generated from the parser itself,
so it lists every command, subcommand and option there is."""

from __future__ import annotations

import argparse
import shlex

from dfsbuild.cli.output import EXIT_OK


def _tree(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, list[str]]:
    """Words that may follow each command path ("" for the top): subcommands and options."""
    out: dict[str, list[str]] = {}
    words: list[str] = []
    for action in parser._actions:
        words.extend(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                out.update(_tree(sub, f"{prefix} {name}".strip()))
    out[prefix] = sorted(set(words))
    return out


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    tree = _tree(parser)
    if shell == "fish":
        lines = ["# dfsbuild completion for fish: dfsbuild completion fish | source"]
        for path, words in sorted(tree.items()):
            cond = ("__fish_use_subcommand" if not path else
                    "__fish_seen_subcommand_from " + path.split()[-1])
            for w in words:
                flag = f"-l {w[2:]}" if w.startswith("--") else f"-f -a {shlex.quote(w)}"
                lines.append(f"complete -c dfsbuild -n '{cond}' {flag}")
        return "\n".join(lines) + "\n"
    cases = "\n".join(f"    {shlex.quote(path)}) words={shlex.quote(' '.join(words))};;"
                      for path, words in sorted(tree.items()))
    body = f"""_dfsbuild() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${{COMP_WORDS[i]}}
    case $w in -*) ;; *) [[ -n "$(_dfsbuild_words "${{path:+$path }}$w")" ]] && \\
      path="${{path:+$path }}$w";; esac
  done
  local words; words=$(_dfsbuild_words "$path")
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ ${{#COMPREPLY[@]}} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}}
_dfsbuild_words() {{
  local words=""
  case $1 in
{cases}
  esac
  echo "$words"
}}
complete -F _dfsbuild dfsbuild
"""
    if shell == "zsh":
        return "# dfsbuild completion for zsh: source <(dfsbuild completion zsh)\n" \
               "autoload -U +X bashcompinit && bashcompinit\n" + body
    return "# dfsbuild completion for bash: source <(dfsbuild completion bash)\n" + body


def cmd_completion(args: argparse.Namespace) -> int:
    # The whole parser, made by the factory main hands over (main imports this module).
    print(script(args.parser_factory(), args.shell), end="")
    return EXIT_OK
