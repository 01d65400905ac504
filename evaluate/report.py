"""One self-contained HTML page for a result: `index.html` and its files in one folder, linked relatively.

A report is a list of sections (a table, a set of images, a video, a block of text), each labelled with where it
came from. Images are copied into `files/`, videos re-encoded as WebM (VP8), which every browser plays, each checked
complete. The folder belongs to the report (outputs.py): it is built beside its place and replaces the previous
report as a whole only once every file is written, so the folder can be copied anywhere and opened from disk, and a
failure (a full disk) leaves the previous report as it was.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from blur2blur.errors import UserError, os_error_line
from blur2blur.files.locks import Lock, beside
from blur2blur.files.outputs import owned_folder, publish_folder, staging_folder
from blur2blur.images import video_frame_count

STYLE = """
body { font: 15px system-ui, sans-serif; max-width: 1200px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.source { color: #777; font-size: 13px; margin: -0.4em 0 0.8em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
img, video { max-width: 100%; display: block; margin: 0.4em 0 1em; }
figure { margin: 0; } figcaption { color: #555; font-size: 13px; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.warning { background: #fff3cd; border: 1px solid #e0c46c; padding: 0.6em 0.8em; }
"""


@dataclass
class Section:
    title: str
    source: str  # where it came from: a command, a file
    kind: str  # "table" (markdown), "images", "video", "text", "warning"
    content: object = None
    captions: list[str] = field(default_factory=list)


class Report:
    """Sections gathered in order, written as `folder/index.html` with their files beside it; `close()` drops
    what a report that did not `write()` left."""

    def __init__(self, folder: str | Path, title: str, option: str = "--report") -> None:
        self.folder, self.title, self.option = owned_folder(folder, option, "report"), title, option
        self.sections: list[Section] = []
        self.lock = Lock(beside(self.folder), f"{option} {folder}").acquire()
        try:
            self.staging = staging_folder(self.folder)
            (self.staging / "files").mkdir()
        except OSError as err:
            self.close()
            raise UserError(f"{option} {folder}: cannot create it ({err.strerror})") from None
        self._names: set[str] = set()

    def close(self) -> None:
        if hasattr(self, "staging"):
            shutil.rmtree(self.staging, ignore_errors=True)
        self.lock.release()

    def _file(self, path: Path, suffix: str | None = None) -> str:
        """A unique name under files/ for a copy of `path`: its relative link."""
        stem, suffix = path.stem, suffix or path.suffix
        name, n = f"{stem}{suffix}", 1
        while name in self._names:
            n += 1
            name = f"{stem}-{n}{suffix}"
        self._names.add(name)
        return f"files/{name}"

    def table(self, title: str, markdown: str, source: str) -> None:
        self.sections.append(Section(title, source, "table", markdown))

    def text(self, title: str, text: str, source: str) -> None:
        self.sections.append(Section(title, source, "text", text))

    def warning(self, title: str, text: str, source: str) -> None:
        self.sections.append(Section(title, source, "warning", text))

    def images(self, title: str, paths: list[Path], source: str, captions: list[str] | None = None) -> None:
        links = []
        for path in paths:
            link = self._file(path)
            shutil.copyfile(path, self.staging / link)
            links.append(link)
        self.sections.append(Section(title, source, "images", links, captions or [p.name for p in paths]))

    def video(self, title: str, path: Path, source: str) -> None:
        """`path` re-encoded as WebM (VP8) into files/, so the page plays it in any browser."""
        link = self._file(path, ".webm")
        capture = cv2.VideoCapture(str(path))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        writer, frames = None, 0
        target = self.staging / link
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:
                    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"VP80"), fps,
                                             (frame.shape[1], frame.shape[0]))
                writer.write(frame)
                frames += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if not frames:
            raise UserError(f"{path}: OpenCV cannot read this video for the report")
        written = video_frame_count(target)
        if written != frames:
            raise UserError(f"{self.option} {self.folder}: its video did not write completely ({frames} frames sent, "
                            f"{written or 0} readable; is the disk full?); the previous report is kept")
        self.sections.append(Section(title, source, "video", link, [f"{frames} frames at {fps:g} frames/s"]))

    def write(self) -> Path:
        body = [f"<h1>{html.escape(self.title)}</h1>",
                f"<p class=source>written {time.strftime('%Y-%m-%d %H:%M')} by blur2blur</p>"]
        for section in self.sections:
            body.append(f"<h2>{html.escape(section.title)}</h2>")
            body.append(f"<p class=source>from {html.escape(section.source)}</p>")
            body.append(_render(section))
        page = (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(self.title)}</title>"
                f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
        (self.staging / "index.html").write_bytes(page.encode())
        publish_folder(self.staging, self.folder, self.option, "report")
        return self.folder / "index.html"


def _render(section: Section) -> str:
    if section.kind == "table":
        return markdown_to_html(str(section.content))
    if section.kind == "text":
        return f"<pre>{html.escape(str(section.content))}</pre>"
    if section.kind == "warning":
        return f"<p class=warning>{html.escape(str(section.content))}</p>"
    if section.kind == "images":
        return "\n".join(f'<figure><img src="{html.escape(link)}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                         for link, caption in zip(section.content, section.captions))
    if section.kind == "video":
        return (f'<video src="{html.escape(str(section.content))}" controls loop muted autoplay playsinline></video>'
                f"<p class=source>{html.escape(section.captions[0])}</p>")
    raise ValueError(f"unknown section kind {section.kind!r}")


def table_cell(text: str) -> str:
    """`text` made safe for a cell of a markdown table: on one line, its `|` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_to_html(markdown: str) -> str:
    """The project's markdown tables (and the lines around them) as HTML; **bold** kept."""
    out, rows = [], []

    def cell(text: str) -> str:
        escaped = html.escape(text.strip().replace("\\|", "|"))
        while escaped.count("**") >= 2:
            escaped = escaped.replace("**", "<b>", 1).replace("**", "</b>", 1)
        return escaped

    def flush() -> None:
        if rows:
            head, *rest = rows
            out.append("<table><tr>" + "".join(f"<th>{cell(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rest)
                       + "</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:])
            if not all(set(c.strip()) <= set("-:") for c in cells):  # the |---| rule
                rows.append(cells)
        else:
            flush()
            if line.strip():
                out.append(f"<p>{cell(line)}</p>")
    flush()
    return "\n".join(out)


def curves_of(checkpoints: list[str | Path]) -> list[tuple[Path, str]]:
    """(curves.png, its run folder) of the training runs the checkpoints come from, where they are still there."""
    found = []
    for checkpoint in checkpoints:
        run = Path(checkpoint).parent
        if (run / "curves.png").is_file() and (run / "curves.png", str(run)) not in found:
            found.append((run / "curves.png", str(run)))
    return found


def load_json(path: str | Path, option: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{option} {path}: cannot read it as JSON ({err})") from None


def build_report(folder: str | Path, command: str, evaluation: dict | None = None, grids: str | Path | None = None,
                 checkpoints: list[str | Path] = (), stats: dict | None = None, bench: dict | None = None,
                 video: str | Path | None = None, sources: dict[str, str] | None = None,
                 option: str = "--report") -> Path:
    """The page of one result: the evaluation's table (deblur or hand pose) and warning, its comparison grids, the
    training curves of the runs behind the checkpoints, b2b-run's timing report, b2b-bench's table and the output
    video; `sources` names the file each came from (default: `command`)."""
    sources = sources or {}
    report = Report(folder, "blur2blur report", option)
    try:
        _gather(report, command, evaluation, grids, checkpoints, stats, bench, video, sources)
        return report.write()
    except OSError as err:
        kept = "the previous report is kept" if Path(folder, "index.html").exists() else "nothing was written"
        where = os_error_line(err).replace(str(report.staging), str(folder))  # the staging folder is gone
        raise UserError(f"{option} {folder}: could not be written ({where}); {kept}") from None
    finally:
        report.close()


def _gather(report: Report, command: str, evaluation: dict | None, grids: str | Path | None,
            checkpoints: list[str | Path], stats: dict | None, bench: dict | None, video: str | Path | None,
            sources: dict[str, str]) -> None:
    from blur2blur.evaluate.deblur import format_deblur_table
    from blur2blur.evaluate.handpose import format_handpose_table
    from blur2blur.evaluate.speed import format_bench_table
    from blur2blur.runtime.pipeline import format_report

    def formatted(formatter, data: dict, where: str, what: str) -> str:
        try:
            return formatter(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise UserError(f"{where}: is not {what} ({type(err).__name__}: {err}); give the file that command "
                            "wrote") from None

    if evaluation is not None:
        where = sources.get("evaluation", command)
        if not isinstance(evaluation, dict):
            raise UserError(f"{where}: is not a b2b-eval deblur or handpose --json file; give the file that command "
                            "wrote")
        if evaluation.get("harm_warning"):
            report.warning("Restoration makes these frames worse", str(evaluation["harm_warning"]), where)
        if "pairs" in evaluation:
            table = formatted(format_deblur_table, evaluation, where, "a b2b-eval deblur --json file")
            report.table(f"PSNR / SSIM on {evaluation.get('evaluated')} pairs", table, where)
        else:
            table = formatted(format_handpose_table, evaluation, where, "a b2b-eval deblur or handpose --json file")
            report.table(f"Hand landmarks on {evaluation.get('photos')} photos", table, where)
    if grids and Path(grids).is_dir():
        files = sorted(Path(grids).glob("*.png"))
        if files:
            report.images("Comparison grids", files, sources.get("grids", str(grids)))
    for curves, run in curves_of(list(checkpoints)):
        report.images(f"Training curves of {run}", [curves], str(curves))
    if stats is not None:
        where = sources.get("stats", command)
        report.text("b2b-run timing report", formatted(format_report, stats, where, "a b2b-run --stats file"), where)
    if bench is not None:
        where = sources.get("bench", command)
        report.table("b2b-bench: what a frame costs", formatted(format_bench_table, bench, where,
                                                                "a b2b-bench --json file"), where)
    if video:
        report.video("The output video", Path(video), str(video))
