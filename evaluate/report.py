"""One self-contained HTML page for a result: `index.html` and its files in one folder, linked relatively.

A report is a list of sections (a table, a set of images, a video, a block of text), each labelled with where it
came from. Images are copied into `files/`, videos re-encoded as WebM (VP8), which every browser plays; the page is
written last and atomically, so the folder can be copied anywhere and opened from disk.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from blur2blur.errors import UserError
from blur2blur.images import temporary, write_atomic

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
    """Sections gathered in order, written as `folder/index.html` with their files beside it."""

    def __init__(self, folder: str | Path, title: str) -> None:
        self.folder, self.title = Path(folder), title
        self.sections: list[Section] = []
        try:
            (self.folder / "files").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"--report {folder}: cannot create it ({err.strerror})") from None
        self._names: set[str] = set()

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
            shutil.copyfile(path, self.folder / link)
            links.append(link)
        self.sections.append(Section(title, source, "images", links, captions or [p.name for p in paths]))

    def video(self, title: str, path: Path, source: str) -> None:
        """`path` re-encoded as WebM (VP8) into files/, so the page plays it in any browser."""
        link = self._file(path, ".webm")
        capture = cv2.VideoCapture(str(path))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        writer, frames = None, 0
        target = temporary(self.folder / link)
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
            target.unlink(missing_ok=True)
            raise UserError(f"{path}: OpenCV cannot read this video for the report")
        target.replace(self.folder / link)
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
        index = self.folder / "index.html"
        write_atomic(index, page.encode())
        return index


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


def markdown_to_html(markdown: str) -> str:
    """The project's markdown tables (and the lines around them) as HTML; **bold** kept."""
    out, rows = [], []

    def cell(text: str) -> str:
        escaped = html.escape(text.strip())
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
            cells = line.strip().strip("|").split("|")
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
                 video: str | Path | None = None, sources: dict[str, str] | None = None) -> Path:
    """The page of one result: the evaluation's table (deblur or hand pose) and warning, its comparison grids, the
    training curves of the runs behind the checkpoints, b2b-run's timing report, b2b-bench's table and the output
    video; `sources` names the file each came from (default: `command`)."""
    from blur2blur.evaluate.deblur import format_deblur_table
    from blur2blur.evaluate.handpose import format_handpose_table
    from blur2blur.evaluate.speed import format_bench_table
    from blur2blur.runtime.pipeline import format_report

    sources = sources or {}
    report = Report(folder, "blur2blur report")
    if evaluation is not None:
        where = sources.get("evaluation", command)
        if evaluation.get("harm_warning"):
            report.warning("Restoration makes these frames worse", evaluation["harm_warning"], where)
        if "pairs" in evaluation:
            report.table(f"PSNR / SSIM on {evaluation['evaluated']} pairs", format_deblur_table(evaluation), where)
        else:
            report.table(f"Hand landmarks on {evaluation['photos']} photos", format_handpose_table(evaluation), where)
    if grids and Path(grids).is_dir():
        files = sorted(Path(grids).glob("*.png"))
        if files:
            report.images("Comparison grids", files, sources.get("grids", str(grids)))
    for curves, run in curves_of(list(checkpoints)):
        report.images(f"Training curves of {run}", [curves], str(curves))
    if stats is not None:
        report.text("b2b-run timing report", format_report(stats), sources.get("stats", command))
    if bench is not None:
        report.table("b2b-bench: what a frame costs", format_bench_table(bench), sources.get("bench", command))
    if video:
        report.video("The output video", Path(video), str(video))
    return report.write()
