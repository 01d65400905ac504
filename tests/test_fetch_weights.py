"""Official weights by name: download from mirrors (on a real HTTP server on 127.0.0.1), resume, verification,
broken and hostile mirrors, a full disk, the resolver's message for a missing file, and `b2b-train fetch-weights`."""

import dataclasses
import hashlib
import io
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from click.testing import CliRunner
from helpers import fill

from blur2blur.errors import UserError
from blur2blur.models import create_model
from blur2blur.models.checkpoint import _nafnet_arch, load_checkpoint, nafnet_args_from_state_dict
from blur2blur.models.nafnet import NAFNet
from blur2blur.train.cli import main, main_group
from blur2blur.weights import OFFICIAL, official_path, resolve_checkpoint
from blur2blur.weights.fetch import fetch_weights

PAYLOAD = os.urandom(300_000)


class Handler(BaseHTTPRequestHandler):
    """Serves `server.files` by path, with byte ranges unless `server.honour_range` is off; a path in
    `server.hostile` is answered by that function instead (given the handler and the file)."""

    def do_GET(self):
        body = self.server.files.get(self.path)
        asked = self.headers.get("Range")
        self.server.requests.append((self.path, asked))
        if self.path in self.server.hostile:
            self.server.hostile[self.path](self, body)
            return
        if body is None:
            self.send_error(404)
            return
        start = int(asked.removeprefix("bytes=").split("-")[0]) if asked and self.server.honour_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])
        self.server.sent += len(body) - start

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    """A file server on 127.0.0.1; the weights' cache folder (`.cache`) in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests, httpd.sent, httpd.honour_range, httpd.hostile = {}, [], 0, True, {}
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.cache = tmp_path / "cache" / "blur2blur" / "weights"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def weights_served(server, body: bytes = PAYLOAD, *paths: str):
    """nafnet-gopro-w32's catalog entry with `body`'s size and hash, fetched from `paths` on `server` (each
    serves `body` unless the test changes it)."""
    paths = paths or ("/a/file.pth",)
    for path in paths:
        server.files[path] = body
    return dataclasses.replace(OFFICIAL["nafnet-gopro-w32"], size=len(body), sha256=hashlib.sha256(body).hexdigest(),
                               mirrors=tuple(server.url + path for path in paths))


def test_a_fetch_downloads_verifies_and_shows_progress(server, capsys):
    weights = weights_served(server)
    path = fetch_weights(weights)
    assert path == official_path(weights) and path.read_bytes() == PAYLOAD
    assert path.parent == server.cache and path.name == "NAFNet-GoPro-width32.pth"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no .part, no lock left
    assert "NAFNet-GoPro-width32.pth" in capsys.readouterr().err  # tqdm's bar
    assert fetch_weights(weights) == path and len(server.requests) == 1  # in place and verified: no download


def test_an_interrupted_download_resumes_with_a_range_request(server):
    weights = weights_served(server)
    part = official_path(weights).with_name("NAFNet-GoPro-width32.pth.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:123_456])
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert server.requests == [("/a/file.pth", "bytes=123456-")]
    assert server.sent == len(PAYLOAD) - 123_456 and not part.exists()


def test_a_server_that_ignores_range_is_read_from_the_start(server):
    server.honour_range = False
    weights = weights_served(server)
    part = official_path(weights).with_name("NAFNet-GoPro-width32.pth.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not even the right bytes: all of it is replaced
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert server.sent == len(PAYLOAD)


def test_a_wrong_partial_file_is_downloaded_again_whole(server):
    weights = weights_served(server)
    part = official_path(weights).with_name("NAFNet-GoPro-width32.pth.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # an old .part of other bytes: resumed, refused, then fetched whole
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert [asked for _, asked in server.requests] == ["bytes=1000-", None]


def test_a_missing_mirror_is_skipped_for_the_next(server):
    weights = weights_served(server, PAYLOAD, "/gone.pth", "/here.pth")
    del server.files["/gone.pth"]
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/gone.pth", "/here.pth"]


def endless_without_length(handler, body):
    """The file, then megabytes more, with no Content-Length: nothing in the headers caps it."""
    handler.send_response(200)
    handler.end_headers()
    try:
        handler.wfile.write(body)
        for _ in range(20):
            handler.wfile.write(os.urandom(len(body)))
    except OSError:
        pass  # the client stopped reading


def length_not_a_number(handler, body):
    handler.send_response(200)
    handler.send_header("Content-Length", "abc")
    handler.end_headers()
    handler.wfile.write(body)


def closes_halfway(handler, body, length: bool):
    """Half the file, then a clean close (HTTP/1.0), with or without the whole file's Content-Length."""
    handler.send_response(200)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[:len(body) // 2])


def drip(handler, body, where: str):
    """One byte every 0.1 s for up to 10 s: of the body after whole headers, or of the headers themselves."""
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    if where == "body":
        handler.wfile.write(b"Content-Length: %d\r\n\r\n" % len(body))
    stream = body if where == "body" else b"X-Slow: " + b"x" * 100
    try:
        for i in range(100):
            handler.wfile.write(stream[i:i + 1])
            time.sleep(0.1)
    except OSError:
        pass  # the client gave up


def resets(handler, body):
    """Headers and a little of the body, then a TCP reset."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[:1000])
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


def garbage(handler, body):
    handler.wfile.write(b"SPAM SPAM SPAM\r\n\r\n")


def test_a_body_longer_than_the_file_is_cut_at_its_size(server):
    weights = weights_served(server, PAYLOAD, "/long.pth")
    server.hostile["/long.pth"] = endless_without_length
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD


def test_a_length_that_is_not_a_number_is_taken_as_unknown(server):
    weights = weights_served(server, PAYLOAD, "/abc.pth")
    server.hostile["/abc.pth"] = length_not_a_number
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD


@pytest.mark.parametrize("length", [True, False], ids=["with-length", "without-length"])
def test_a_mirror_that_closes_halfway_leaves_its_part_to_resume_from(server, length):
    weights = weights_served(server, PAYLOAD, "/cut.pth", "/here.pth")
    server.hostile["/cut.pth"] = lambda handler, body: closes_halfway(handler, body, length)
    alone = dataclasses.replace(weights, mirrors=weights.mirrors[:1])
    with pytest.raises(UserError, match=f"{server.url}/cut.pth: the transfer ended after 150,000 of 300,000 bytes"):
        fetch_weights(alone, progress=False)
    part = official_path(weights).with_name("NAFNet-GoPro-width32.pth.part")
    assert part.read_bytes() == PAYLOAD[:150_000]  # kept for the next try
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert server.requests[1:] == [("/cut.pth", "bytes=150000-"), ("/here.pth", "bytes=150000-")]
    assert server.sent == len(PAYLOAD) - 150_000


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_mirror_is_left_at_the_deadline_for_the_next(server, where):
    weights = weights_served(server, PAYLOAD, "/drip.pth", "/here.pth")
    server.hostile["/drip.pth"] = lambda handler, body: drip(handler, body, where)
    began = time.monotonic()
    assert fetch_weights(weights, progress=False, deadline_s=0.5).read_bytes() == PAYLOAD
    assert time.monotonic() - began < 2.5
    (first, _), (second, asked) = server.requests
    assert (first, second) == ("/drip.pth", "/here.pth")
    if where == "body":  # the bytes that dripped in are kept and resumed from
        assert asked is not None and 0 < int(asked.removeprefix("bytes=").rstrip("-")) < 20
    else:
        assert asked is None


@pytest.mark.parametrize("broken", [resets, garbage])
def test_a_network_failure_moves_on_to_the_next_mirror(server, broken):
    weights = weights_served(server, PAYLOAD, "/broken.pth", "/here.pth")
    server.hostile["/broken.pth"] = broken
    assert fetch_weights(weights, progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/broken.pth", "/here.pth"]


def test_a_full_disk_names_the_file_and_stops_there(server, small_disk, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(small_disk))
    weights = weights_served(server, PAYLOAD, "/one.pth", "/two.pth")
    part = official_path(weights).with_name("NAFNet-GoPro-width32.pth.part")
    part.parent.mkdir(parents=True)
    fill(small_disk, leave=100_000)  # a third of the file fits
    with pytest.raises(UserError) as caught:
        fetch_weights(weights, progress=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("fetch-weights nafnet-gopro-w32: ")
    assert f"{part}: No space left on device (the disk is full: free some space and run again)" in message
    assert "another mirror would not help" in message
    assert [path for path, _ in server.requests] == ["/one.pth"]


def test_a_wrong_hash_leaves_nothing_in_place_and_says_what_to_do(server):
    weights = weights_served(server, PAYLOAD, "/one.pth", "/two.pth")
    server.files["/one.pth"] = server.files["/two.pth"] = PAYLOAD[:-1] + b"?"  # same size, other bytes
    with pytest.raises(UserError) as caught:
        fetch_weights(weights, progress=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("fetch-weights nafnet-gopro-w32: no mirror delivered")
    assert f"{server.url}/one.pth: wrong size or sha256; {server.url}/two.pth: wrong size or sha256" in message
    assert str(official_path(weights)) in message and "drive.google.com" in message
    assert list(official_path(weights).parent.iterdir()) == []


def test_a_missing_official_file_names_the_path_and_how_to_get_it(server):
    with pytest.raises(UserError) as caught:
        resolve_checkpoint("nafnet-reds-w64", "--deblurrer")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--deblurrer nafnet-reds-w64:")
    assert "run `b2b-train fetch-weights nafnet-reds-w64`" in message
    path = official_path(OFFICIAL["nafnet-reds-w64"])
    assert "place NAFNet-REDS-width64.pth (271,756,689 bytes, from https://drive.google.com/file/d/" in message
    assert message.endswith(f" at {path}") and path.parent == server.cache


def test_a_name_resolves_after_fetch_and_loads_as_an_official_nafnet(server):
    official = io.BytesIO()
    model = create_model("nafnet-tiny")
    torch.save({"params": model.state_dict()}, official)  # a small stand-in in the official file format
    weights = weights_served(server, official.getvalue(), "/w32.pth")
    with pytest.MonkeyPatch.context() as patch:  # only the fetch uses the test server; the name resolves as shipped
        patch.setitem(OFFICIAL, "nafnet-gopro-w32", weights)
        result = CliRunner().invoke(main_group, ["fetch-weights", "nafnet-gopro-w32"])
        assert result.exit_code == 0, result.output
    path = resolve_checkpoint("nafnet-gopro-w32", "--deblurrer")
    assert path == official_path(weights) and f"nafnet-gopro-w32: {path}" in result.output
    loaded, data = load_checkpoint("nafnet-gopro-w32", "deblurrer", option="--deblurrer")
    assert data["meta"]["source"] == "official NAFNet checkpoint"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    listed = CliRunner().invoke(main_group, ["fetch-weights", "--list"]).output
    assert "NAFNet-GoPro-width32.pth (69 MB, fetched)" in listed and "NAFNet-REDS-width64.pth (272 MB, not" in listed


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_each_official_shape_is_recognised_as_its_preset(name):
    # The official test options' network_g (options/test/{GoPro,REDS}/NAFNet-width{32,64}.yml): the REDS
    # model has GoPro width 64's shape. Built on the meta device: shapes only, no memory.
    width = {"nafnet-gopro-w32": 32, "nafnet-gopro-w64": 64, "nafnet-reds-w64": 64}[name]
    with torch.device("meta"):
        official = NAFNet(img_channel=3, width=width, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28],
                          dec_blk_nums=[1, 1, 1, 1])
    assert _nafnet_arch(nafnet_args_from_state_dict(official.state_dict())) == OFFICIAL[name].arch


def test_the_command_lists_names_and_refuses_unknown_ones(server, capsys):
    runner = CliRunner()
    shown = runner.invoke(main_group, ["fetch-weights", "--help"])
    assert shown.exit_code == 0 and "--list" in shown.output and "NAMES..." in shown.output
    unknown = runner.invoke(main_group, ["fetch-weights", "nafnet-gopro-w128"])
    assert unknown.exit_code == 2 and "'nafnet-gopro-w128' is not one of 'nafnet-gopro-w32'" in unknown.output
    with pytest.raises(SystemExit) as exit_code:  # through the CLI wrapper: one line on stderr
        main(["fetch-weights"])
    assert exit_code.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: name the weights to fetch (--list shows them) (see b2b-train --help)"]


def test_all_mirrors_failing_is_one_line_from_the_command(server, capsys, monkeypatch):
    weights = dataclasses.replace(weights_served(server), mirrors=(server.url + "/none.pth",))
    monkeypatch.setitem(OFFICIAL, "nafnet-gopro-w32", weights)
    with pytest.raises(SystemExit) as exit_code:
        main(["fetch-weights", "nafnet-gopro-w32"])
    assert exit_code.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fetch-weights nafnet-gopro-w32: no mirror delivered")
    assert f"{server.url}/none.pth: HTTP 404" in lines[0]
