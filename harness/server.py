"""`vrbench serve CHECKPOINT`: an OpenAI-compatible chat-completions server over the `hf`
backend, on the standard library's HTTP server.

    POST /v1/chat/completions   messages with text and base64 data-URL images; n,
                                max_tokens (or max_completion_tokens), temperature, top_p, seed,
                                and vLLM's top_k and repetition_penalty
    GET  /v1/models             the one model served
    GET  /health

Requests are served one at a time, each as a batch of one: a greedy answer is the one
`vrbench eval --backend hf --batch-size 1` gives. Images given by http(s) URL are refused
(the server fetches nothing).

Every request body is checked against one schema before anything runs (`parse_request`),
and everything a client can make large is capped (`Limits`): the body, the number of
responses, the tokens, the image pixels and the time a request may take. A generation stops
when its client goes away or its time runs out. Every refusal is a JSON error in the OpenAI
shape (`{"error": {"message", "type", "param", "code"}}`) with a 4xx status; the server
never drops a connection without an answer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import math
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from PIL import Image

from harness.backends import GenerationConfig, Request
from tasks.spec import readable
from vrbench.errors import VrbenchError

if TYPE_CHECKING:  # loaded by `serve`: its flags (`Limits`) are read without transformers
    from harness.backends.hf import HFBackend


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_tokens_limit: int = 4096  # the largest max_tokens a request may ask for
    max_n: int = 16  # the most responses (n) a request may ask for
    max_body_mb: float = 20.0  # the largest request body, in MB
    max_image_pixels: int = 16_000_000  # the most pixels (width x height) of one image
    request_timeout: float = 300.0  # seconds a request may take from arrival to answer,
    # waiting included; then its generation stops and it is answered 408
    arrival_timeout: float = 60.0  # seconds a client may take to send its whole request
    # (request line, headers and body, however slowly it trickles); then it is disconnected
    max_connections: int = 64  # connections open at once; one more is answered 503 and closed

    def check(self) -> None:
        for name, value in self.__dict__.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise VrbenchError(f"--{name.replace('_', '-')} must be a positive number, "
                                   f"not {value}.")


class BadRequest(ValueError):
    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param, self.status = param, status


# -- the request schema ----------------------------------------------------------------------
def _int(body: dict, key: str, default: int, lo: int, hi: int | None = None) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer", key)
    if value < lo or (hi is not None and value > hi):
        raise BadRequest(f"{key} must be in [{lo}, {hi}]" if hi is not None
                         else f"{key} must be at least {lo}", key)
    return value


def _number(body: dict, key: str, default: float, lo: float, hi: float,
            lo_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{key} must be a finite number", key)
    if value > hi or value < lo or (lo_open and value == lo):
        raise BadRequest(f"{key} must be in {'(' if lo_open else '['}{lo}, {hi}]", key)
    return float(value)


def generation_config(body: dict, limits: Limits) -> GenerationConfig:
    tokens_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    cfg = GenerationConfig(
        max_new_tokens=_int(body, tokens_key, min(256, limits.max_tokens_limit), 1,
                            limits.max_tokens_limit),
        temperature=_number(body, "temperature", 0.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        n=_int(body, "n", 1, 1, limits.max_n),
        top_k=_int(body, "top_k", 0, 0), seed=_int(body, "seed", 0, -(2 ** 63), 2 ** 63 - 1),
        repetition_penalty=_number(body, "repetition_penalty", 1.0, 0.0, 10.0, lo_open=True))
    if cfg.n > 1 and cfg.temperature == 0:
        raise BadRequest("n > 1 needs a temperature above 0", "n")
    if body.get("stream"):
        raise BadRequest("streaming is not supported", "stream")
    return cfg


def parse_messages(body: dict, limits: Limits) -> Request:
    """The one user turn's text and images (earlier turns are not supported)."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages must be a non-empty list", "messages")
    if len(msgs) != 1 or not isinstance(msgs[0], dict) or msgs[0].get("role") != "user":
        raise BadRequest("only one user message is supported", "messages")
    content = msgs[0].get("content")
    if isinstance(content, str):
        return Request(content)
    if not isinstance(content, list) or not content:
        raise BadRequest("content must be a string or a non-empty list of parts",
                         "messages[0].content")
    texts, images = [], []
    for i, part in enumerate(content):
        where = f"messages[0].content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise BadRequest("a text part needs a string text", where)
            texts.append(part["text"])
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str):
                raise BadRequest("an image_url part needs a url string", where)
            images.append(_decode_data_url(url, limits, where))
        else:
            raise BadRequest(f"unsupported content part {kind!r}", where)
    return Request("\n".join(texts), images)


def _decode_data_url(url: str, limits: Limits, where: str) -> Image.Image:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise BadRequest("images must be base64 data URLs (data:image/...;base64,...)", where)
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        img = Image.open(io.BytesIO(raw))  # reads the header only
        if img.width * img.height > limits.max_image_pixels:
            raise BadRequest(f"an image of {img.width}x{img.height} pixels is over the limit of "
                             f"{limits.max_image_pixels} pixels", where)
        img.load()
        return img.convert("RGB")
    except BadRequest:
        raise
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadRequest(f"an image could not be decoded ({readable(e)})", where) from e


def parse_request(body, limits: Limits) -> tuple[Request, GenerationConfig]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if "model" in body and not isinstance(body["model"], str):
        raise BadRequest("model must be a string", "model")
    return parse_messages(body, limits), generation_config(body, limits)


# -- the server ---------------------------------------------------------------------------------
class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, backend: HFBackend, model_name: str, limits: Limits = Limits()):
        super().__init__(address, Handler)
        self.backend, self.model_name, self.limits = backend, model_name, limits
        self.lock = threading.Lock()  # one generation at a time
        self.slots = threading.BoundedSemaphore(limits.max_connections)

    def process_request(self, request, client_address):
        """A connection past `max_connections` is answered 503 at once and closed."""
        if not self.slots.acquire(blocking=False):
            body = json.dumps({"error": {
                "message": f"the server has {self.limits.max_connections} connections open; "
                           "retry later", "param": None, "code": None,
                "type": "server_error"}}).encode()
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                b"application/json\r\nConnection: close\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class Handler(BaseHTTPRequestHandler):
    server: Server
    timeout = 60  # seconds a client may take to send its request

    def log_message(self, fmt, *args):  # no access log
        pass

    def handle_one_request(self):
        """One request, which must arrive whole within `arrival_timeout` (a read timeout
        alone lets a client that sends a byte a minute hold a thread forever)."""
        self._arrival = threading.Timer(self.server.limits.arrival_timeout, self._cut)
        self._arrival.daemon = True
        self._arrival.start()
        try:
            super().handle_one_request()
        finally:
            self._arrival.cancel()

    def _cut(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 405:
            self.send_header("Allow", "GET, POST")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(data)

    def _error(self, status: int, message: str, param: str | None = None,
               kind: str | None = None) -> None:
        self._send(status, {"error": {
            "message": message, "param": param, "code": None,
            "type": kind or ("invalid_request_error" if status < 500 else "server_error")}})

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (a bad request line, an unknown method) as JSON too."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may be gone
            self._error(code, message or self.responses.get(code, ("error",))[0])

    def do_GET(self):
        self._arrival.cancel()
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "owned_by": "vrbench"}]})
        else:
            self._error(404, f"no route {self.path}", kind="not_found_error")

    def _not_allowed(self):
        self._error(405, f"{self.command} is not allowed here; use GET or POST")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("chunked bodies are not supported; send Content-Length", status=411)
        length = self.headers.get("Content-Length")
        if length is None:
            raise BadRequest("Content-Length is required", status=411)
        if not length.strip().isdigit():
            raise BadRequest(f"Content-Length must be a number of bytes, not {length!r}")
        n = int(length)
        if n > self.server.limits.max_body_mb * 2 ** 20:
            self.close_connection = True  # the body is not read
            raise BadRequest(f"the body ({n} bytes) is over the limit of "
                             f"{self.server.limits.max_body_mb} MB", status=413)
        return self.rfile.read(n)

    def do_POST(self):
        arrived = time.monotonic()
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", kind="not_found_error")
            return
        try:
            raw = self._body()
            self._arrival.cancel()
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise BadRequest(f"the body is not valid JSON ({type(e).__name__})") from e
            req, cfg = parse_request(body, self.server.limits)
            if body.get("model") not in (None, self.server.model_name):
                raise BadRequest(f"model {body['model']!r} is not served here; this server "
                                 f"serves {self.server.model_name!r}", "model", status=404)
            n_prompt = self.server.backend.prompt_tokens(req)
            most = self.server.backend.max_positions
            if most is not None and n_prompt + cfg.max_new_tokens > most:
                raise BadRequest(f"the prompt ({n_prompt} tokens) and max_tokens "
                                 f"({cfg.max_new_tokens}) exceed the model's {most} positions",
                                 "messages")
        except BadRequest as e:
            self._error(e.status, str(e), e.param)
            return
        except TimeoutError:
            self._error(408, "the request body did not arrive in time")
            return
        self._generate(req, cfg, n_prompt, arrived + self.server.limits.request_timeout)

    def _client_gone(self) -> bool:
        """True when the client has closed its side of the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _generate(self, req: Request, cfg: GenerationConfig, n_prompt: int,
                  deadline: float) -> None:
        if not self.server.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._error(503, "the server is busy; try again later", kind="server_busy")
            return
        try:
            cause = []

            def stop() -> bool:
                if time.monotonic() > deadline:
                    cause.append("timeout")
                elif self._client_gone():
                    cause.append("gone")
                return bool(cause)

            responses = self.server.backend.generate([req], cfg, should_stop=stop)[0]
        except Exception as e:  # a request that breaks generation is answered, not dropped
            self._error(500, f"generation failed ({type(e).__name__}: {e})")
            return
        finally:
            self.server.lock.release()
        if cause and cause[0] == "gone":
            self.close_connection = True
            return
        if cause:
            self._error(408, f"the request took more than {self.server.limits.request_timeout} "
                             "seconds and was stopped", kind="timeout")
            return
        completion_tokens = sum(r.n_tokens for r in responses)
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": self.server.model_name,
            "choices": [{"index": i, "message": {"role": "assistant", "content": r.text},
                         "finish_reason": r.finish_reason} for i, r in enumerate(responses)],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": completion_tokens,
                      "total_tokens": n_prompt + completion_tokens}})


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000,
          model_name: str | None = None, ready=None, limits: Limits = Limits()) -> None:
    """Serve until interrupted. `ready(server)` is called once listening (port 0 picks a
    free port: read it from `server.server_address`)."""
    limits.check()
    from harness.backends.hf import HFBackend
    backend = HFBackend(checkpoint)
    server = Server((host, port), backend, model_name or checkpoint, limits)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
