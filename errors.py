"""One error type for bad input, and the CLI wrapper that turns any failure into one line on stderr."""

from __future__ import annotations

import errno
import logging
import os
import sys

import click


class UserError(Exception):
    """Bad input a user can fix: the message names the file or option and what to do."""


def one_line(err: BaseException) -> str:
    """An error's message on one line (libraries such as ONNX Runtime write several)."""
    return " ".join(str(err).split())


REMEDIES = {errno.ENOSPC: "the disk is full: free some space and run again",
            errno.EDQUOT: "the disk quota is used up: free some space and run again",
            errno.EROFS: "the file system is read-only: write somewhere else",
            errno.EACCES: "permission denied: write somewhere you may, or fix the permissions"}


def os_error_line(err: OSError) -> str:
    """An OSError as one line: the file, the system's words, and what to do about it where that is known."""
    where = f"{err.filename}: " if err.filename else ""
    remedy = REMEDIES.get(err.errno)
    return f"{where}{err.strerror or err}" + (f" ({remedy})" if remedy else "")


def run_cli(command: click.Command, argv: list[str] | None = None,
            subcommands: dict[str, click.Command] | None = None) -> None:
    """Run a click command: errors become one line on stderr and a non-zero exit; `--debug` shows tracebacks.

    A first word naming one of `subcommands` (`b2b-export inspect ...`) runs that command instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
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
        command.main(args=argv, prog_name=command.name, standalone_mode=False)
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
        print(f"error: {type(err).__name__}: {one_line(err)} (run again with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
