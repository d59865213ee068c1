"""A small command tree for DMS-style CLIs: `setup relay add-domain ...`.

Hand-written rather than argparse because `setup` must start in a few milliseconds
(argparse alone imports in ~8 ms) and DMS commands are positional. Each command names its
implementation as "module:function", imported only when that command runs.

Exit statuses (CONTRACT.md): 0 success, 1 bad arguments or invalid input, 2 unknown command.
"""

from __future__ import annotations

import sys

from relaykit.cli import ui
from relaykit.errors import RelaykitError, UnknownCommand, UsageError

HELP_WORDS = ("help", "-h", "--help")


class Command:
    """A leaf: `target` is "package.module:function", called with the argument list.
    (Plain classes, not dataclasses: the dataclasses import costs ~7 ms of start-up.)"""

    def __init__(self, name: str, target: str, usage: str, summary: str, examples: tuple[str, ...] = (),
                 *, min_args: int = 0, max_args: int | None = 0, details: str = "") -> None:
        self.name, self.target, self.usage, self.summary = name, target, usage, summary
        self.examples, self.min_args, self.max_args, self.details = examples, min_args, max_args, details


class Group:
    def __init__(self, name: str, summary: str, children: tuple[Command | Group, ...] = ()) -> None:
        self.name, self.summary, self.children = name, summary, children

    def child(self, name: str) -> Command | Group | None:
        return next((c for c in self.children if c.name == name), None)


def usage_line(prog: str, command: Command) -> str:
    return f"{prog} {command.name} {command.usage}".rstrip()


def command_help(prog: str, command: Command) -> str:
    lines = [f"Usage: {usage_line(prog, command)}", "", command.summary]
    if command.details:
        lines += ["", command.details]
    if command.examples:
        lines += ["", "Examples:"] + [f"  {e}" for e in command.examples]
    return "\n".join(lines)


def group_help(prog: str, group: Group) -> str:
    width = max((len(c.name) for c in group.children), default=0)
    lines = [f"Usage: {prog} <command> [arguments]", "", group.summary, "", "Commands:"]
    for child in group.children:
        lines.append(f"  {child.name.ljust(width)}  {child.summary}")
    examples = [e for c in group.children if isinstance(c, Command) for e in c.examples[:1]]
    if examples:
        lines += ["", "Examples:"] + [f"  {e}" for e in examples]
    lines += ["", f"Run '{prog} help <command>' or '{prog} <command> --help' for details."]
    return "\n".join(lines)


def _unknown(prog: str, group: Group, word: str) -> UnknownCommand:
    import difflib  # lazy: only a mistyped command pays for it (test_layers.LAZY)

    names = [c.name for c in group.children]
    close = difflib.get_close_matches(word, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; try '{prog} help'"
    return UnknownCommand(f"unknown command '{prog} {word}'{hint}")


def run(group: Group, argv: list[str], prog: str) -> int:
    """Dispatch argv in the tree; print help, or call the command. Returns the exit status."""
    if not argv:
        print(group_help(prog, group), file=sys.stderr)
        raise UsageError(f"'{prog}' needs a command")
    word, rest = argv[0], argv[1:]
    if word in HELP_WORDS:
        if rest:
            node = group.child(rest[0])
            if node is None:
                raise _unknown(prog, group, rest[0])
            if isinstance(node, Group):
                return run(node, ["help", *rest[1:]], f"{prog} {node.name}")
            print(command_help(prog, node))
        else:
            print(group_help(prog, group))
        return 0
    node = group.child(word)
    if node is None:
        raise _unknown(prog, group, word)
    if isinstance(node, Group):
        return run(node, rest, f"{prog} {node.name}")
    if rest[:1] and rest[0] in ("-h", "--help"):
        print(command_help(prog, node))
        return 0
    if len(rest) < node.min_args or (node.max_args is not None and len(rest) > node.max_args):
        raise UsageError(f"wrong number of arguments\nUsage: {usage_line(prog, node)}")
    module, _, function = node.target.partition(":")
    __import__(module)  # not importlib.import_module: importlib (and warnings) cost ~0.5 ms of start-up
    return getattr(sys.modules[module], function)(rest) or 0


def main_guard(function, argv: list[str], report=None) -> int:
    """Run a CLI function, turning relaykit errors into a message (through `report`,
    default ui.error) and an exit status."""
    report = report or ui.error
    try:
        return function(argv)
    except RelaykitError as exc:
        report(str(exc))
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # e.g. a config path that is a file, a directory, read-only
        where = f"{exc.filename}: " if exc.filename else ""
        report(f"{where}{exc.strerror or exc}")
        return 1
