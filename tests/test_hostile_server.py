"""Class 2 of the hardening: no request stalls or drops `vrbench serve`. Every malformed
request is a 4xx JSON error in the OpenAI shape; limits cap what a request may ask for; a
generation stops when its client goes away or its time is up; the server still answers."""

import base64
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.backends import GenerationConfig, Request, Response
from harness.backends.hf import HFBackend
from harness.server import Limits, Server

LIMITS = Limits(max_tokens_limit=64, max_n=4, max_body_mb=1.0, max_image_pixels=100_000,
                request_timeout=2.0)


@pytest.fixture(scope="module")
def server(tiny_model):
    srv = Server(("127.0.0.1", 0), HFBackend(tiny_model), "tiny", LIMITS)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _raw(port, data: bytes, timeout: float = 30) -> tuple[int, dict]:
    """Send raw bytes; the answer's status and JSON body (the answer must be JSON)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            length = [int(x.split(b":")[1]) for x in head.split(b"\r\n")
                      if x.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    assert buf, "the connection was dropped without an answer"
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _post(port, body, timeout: float = 60) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/v1/chat/completions", data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    out = r.status, json.loads(r.read())
    conn.close()
    return out


def _msg(content="Hi", **kw) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **kw}


def _is_openai_error(status: int, body: dict) -> bool:
    e = body.get("error")
    return 400 <= status < 500 and isinstance(e, dict) and isinstance(e.get("message"), str) \
        and {"type", "param", "code"} <= set(e)


def _png_header(width: int, height: int) -> str:
    """A PNG whose header claims this size (the pixel data is absent)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(
        ">I", zlib.crc32(chunk))
    return "data:image/png;base64," + base64.b64encode(png).decode()


@pytest.mark.parametrize("body,param", [
    (_msg(content=5), "messages[0].content"),
    (_msg(temperature=-1, n=2), "temperature"),
    (_msg(temperature=-1), "temperature"),
    (_msg(top_p=5), "top_p"),
    (_msg(max_tokens=0), "max_tokens"),
    (_msg(n=0), "n"),
    (_msg(max_tokens=1_000_000_000), "max_tokens"),
    (_msg(n=5), "n"),
    (_msg(n=2, temperature=0), "n"),
    (_msg(max_tokens=True), "max_tokens"),
    (_msg(stream=True), "stream"),
    (_msg(content=[{"type": "image_url", "image_url": {"url": _png_header(30000, 30000)}}]),
     "messages[0].content[0]"),
    (_msg(content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]),
     "messages[0].content[0]"),
    (_msg(content=[{"type": "audio"}]), "messages[0].content[0]"),
    ({"model": "tiny", "messages": "hello"}, "messages"),
    ([1, 2, 3], None),
])
def test_invalid_bodies_are_answered_400(server, body, param):
    status, out = _post(server, body)
    assert status == 400 and _is_openai_error(status, out), out
    assert out["error"]["param"] == param


def test_an_image_that_is_not_one_is_named_without_internals(server):
    url = "data:image/png;base64," + base64.b64encode(b"not an image at all").decode()
    status, out = _post(server, _msg(content=[{"type": "image_url", "image_url": {"url": url}}]))
    assert status == 400 and "could not be decoded" in out["error"]["message"]
    assert "0x" not in out["error"]["message"] and "object" not in out["error"]["message"]


def test_protocol_errors_are_json(server):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    status, out = _raw(server, head + b"Content-Length: abc\r\n\r\n{}")
    assert status == 400 and _is_openai_error(status, out)
    status, out = _raw(server, head + b"\r\n")
    assert status == 411 and _is_openai_error(status, out)
    status, out = _raw(server, head + b"Content-Length: 5000000\r\n\r\n")
    assert status == 413 and _is_openai_error(status, out)  # refused before it is read
    status, out = _raw(server, head + b"Content-Length: 9\r\n\r\n{not json")
    assert status == 400 and "not valid JSON" in out["error"]["message"]
    status, out = _raw(server, b"PUT /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and _is_openai_error(status, out)
    status, out = _post(server, _msg(model="other"))
    assert status == 404 and out["error"]["param"] == "model"


class _Endless:
    """A backend whose generation runs until it is told to stop (or a minute passes)."""

    max_positions = None

    def __init__(self):
        self.stopped = threading.Event()

    def prompt_tokens(self, req):
        return 1

    def generate(self, requests, cfg, should_stop):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            if should_stop():
                self.stopped.set()
                break
            time.sleep(0.01)
        return [[Response("", 1, "length")]]


@pytest.fixture
def endless():
    backend = _Endless()
    srv = Server(("127.0.0.1", 0), backend, "tiny", Limits(request_timeout=1.0))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield backend, srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_a_client_that_leaves_stops_its_generation(endless):
    backend, port = endless
    body = json.dumps(_msg()).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.2)
    t0 = time.monotonic()
    assert backend.stopped.wait(0.9), "the generation went on without its client"
    assert time.monotonic() - t0 < 0.9  # before the 1 s time limit: stopped for the hang-up


def test_the_time_limit_stops_a_long_generation(endless):
    backend, port = endless
    t0 = time.monotonic()
    status, out = _post(port, _msg())
    assert status == 408 and out["error"]["type"] == "timeout"
    assert backend.stopped.is_set() and time.monotonic() - t0 < 10


def test_the_hf_backend_stops_when_asked(tiny_model):
    be = HFBackend(tiny_model)
    asked = []
    (out,) = be.generate([Request("Hi")], GenerationConfig(max_new_tokens=50, temperature=1.0),
                         should_stop=lambda: asked.append(1) or len(asked) >= 3)
    assert out[0].n_tokens == 3 and out[0].finish_reason == "length"


def test_a_valid_request_still_works(server):
    img = Image.new("RGB", (56, 56), (220, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    status, out = _post(server, _msg(content=[{"type": "image_url", "image_url": {"url": url}},
                                              {"type": "text", "text": "Colour?"}],
                                     max_tokens=4, n=2, temperature=1.0, seed=3))
    assert status == 200 and len(out["choices"]) == 2
    assert 1 <= out["usage"]["completion_tokens"] <= 8


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "model": JSON | st.just("tiny"), "messages": JSON | st.just([{"role": "user",
                                                                  "content": "Hi"}]),
    "max_tokens": JSON | st.integers(-3, 70), "n": JSON | st.integers(-1, 6),
    "temperature": JSON | st.floats(-1, 3), "top_p": JSON | st.floats(-1, 2),
    "seed": JSON, "stream": JSON})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(JSON, FIELDS))
def test_random_bodies_get_an_answer_never_a_dropped_connection(server, body):
    status, out = _post(server, body)
    assert status == 200 or _is_openai_error(status, out), (status, out)
    if status == 200:
        assert out["choices"] and all(c["message"]["content"] is not None
                                      for c in out["choices"])


def test_the_server_answers_health_after_all_that(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("GET", "/health")
    assert json.loads(conn.getresponse().read()) == {"status": "ok"}


def _server(tiny_model, **limits):
    srv = Server(("127.0.0.1", 0), HFBackend(tiny_model), "tiny", Limits(**limits))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_request_trickling_in_is_cut_at_the_arrival_limit(tiny_model):
    srv = _server(tiny_model, arrival_timeout=1.0)
    try:
        with socket.create_connection(srv.server_address, timeout=10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
            start, closed = time.monotonic(), False
            while time.monotonic() - start < 6:  # one byte every 0.2 s, each read in time
                try:
                    s.sendall(b"X")
                except OSError:
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    if s.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
            assert closed  # at the 1 s arrival limit; a read timeout alone never cuts it
        assert _post(srv.server_address[1], {"messages": [{"role": "user", "content": "hi"}],
                                             "max_tokens": 2})[0] == 200  # still serving
    finally:
        srv.shutdown()
        srv.server_close()


def test_connections_past_the_cap_are_answered_503(tiny_model):
    srv = _server(tiny_model, max_connections=2)
    port = srv.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        time.sleep(0.2)  # both are being served (waiting for their request line)
        status, body = _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and "2 connections open" in body["error"]["message"]
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
