"""What every b2b command shares: click's settings, the wrapper that turns failures into one line, and the
option types (checkpoints by path or name, frame sizes)."""

from __future__ import annotations

import logging
import os
import sys

import click

from blur2blur.errors import UserError, one_line, os_error_line
from blur2blur.weights import resolve_checkpoint

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def run_cli(command: click.Command, argv: list[str] | None = None,
            subcommands: dict[str, click.Command] | None = None) -> None:
    """Run a click command: errors become one line on stderr and a non-zero exit; `--debug` shows tracebacks.

    A first word naming one of `subcommands` (`b2b-export inspect ...`) runs that command instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    line = " ".join([command.name or "", *argv])
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    if argv and argv[0] in (subcommands or {}):
        command = subcommands[argv.pop(0)]
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    # OpenCV's own warnings (undecodable files, absent cameras) would repeat our one-line errors.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "WARNING" if debug else "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "24" if debug else "-8")  # FFmpeg's own: warnings, or quiet
    try:
        command.main(args=argv, prog_name=command.name, standalone_mode=False, obj={"command_line": line})
    except click.ClickException as err:  # a bad option or argument: one line too, pointing at --help
        print(f"error: {' '.join(err.format_message().split())} (see {command.name} --help)", file=sys.stderr)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, click.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except UserError as err:
        if debug:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # the system's refusal (a full disk, a read-only folder): what and where, and what to do
        if debug:
            raise
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # a bug, not bad input: still one line unless asked for more
        if debug:
            raise
        print(f"error: {type(err).__name__}: {one_line(err)} (run again with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)


def command_line() -> str:
    """The command line the running command was given, as `run_cli` received it (for the pages it writes)."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context is not None else None
    return obj.get("command_line", "") if isinstance(obj, dict) else ""


class CheckpointParam(click.ParamType):
    """A click option that takes a checkpoint path or a model's name (shipped or official), and gives the file's
    path."""

    name = "checkpoint"

    def convert(self, value, param, ctx):
        if value in (None, ""):
            return value
        option = param.opts[0] if param is not None else "checkpoint"
        return str(resolve_checkpoint(value, option))


CHECKPOINT = CheckpointParam()


def parse_frame_size(text: str, option: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720); a one-line error naming `option` otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"{option} {text}: write it as WIDTHxHEIGHT, e.g. 1280x720") from None
    if width < 1 or height < 1:
        raise UserError(f"{option} {text}: width and height must be positive")
    return width, height
