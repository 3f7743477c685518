"""`vrbench serve CHECKPOINT`: an OpenAI-compatible chat-completions server over the `hf`
backend, on the standard library's HTTP server.

    POST /v1/chat/completions   messages with text and base64 data-URL images; n,
                                max_tokens (or max_completion_tokens), temperature, top_p, seed
    GET  /v1/models             the one model served
    GET  /health

Requests are served one at a time, each as a batch of one: a greedy answer is the one
`vrbench eval --backend hf --batch-size 1` gives. Images given by http(s) URL are refused
(the server fetches nothing).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend


class BadRequest(ValueError):
    pass


def parse_messages(body: dict) -> Request:
    """The last user turn's text and images (earlier turns are not supported)."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages must be a non-empty list")
    if len(msgs) != 1 or msgs[0].get("role") != "user":
        raise BadRequest("only one user message is supported")
    content = msgs[0].get("content")
    if isinstance(content, str):
        return Request(content)
    texts, images = [], []
    for part in content or []:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            images.append(_decode_data_url(url))
        else:
            raise BadRequest(f"unsupported content part {part.get('type')!r}")
    return Request("\n".join(texts), images)


def _decode_data_url(url: str) -> Image.Image:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise BadRequest("images must be base64 data URLs (data:image/...;base64,...)")
    try:
        img = Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1],
                                                     validate=True)))
        img.load()
    except (binascii.Error, OSError) as e:
        raise BadRequest(f"an image could not be decoded ({e})") from e
    return img.convert("RGB")


def generation_config(body: dict) -> GenerationConfig:
    try:
        cfg = GenerationConfig(
            max_new_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens")
                               or 256),
            temperature=float(body.get("temperature", 0.0) or 0.0),
            top_p=float(body.get("top_p", 1.0) or 1.0), n=int(body.get("n", 1) or 1),
            seed=int(body.get("seed", 0) or 0))
    except (TypeError, ValueError) as e:
        raise BadRequest(f"bad generation parameter ({e})") from e
    if cfg.n > 1 and cfg.temperature == 0:
        raise BadRequest("n > 1 needs a temperature above 0")
    if cfg.n < 1 or cfg.max_new_tokens < 1:
        raise BadRequest("n and max_tokens must be at least 1")
    return cfg


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, backend: HFBackend, model_name: str):
        super().__init__(address, Handler)
        self.backend, self.model_name = backend, model_name
        self.lock = threading.Lock()  # one generation at a time


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, fmt, *args):  # no access log
        pass

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error"
                                      if status < 500 else "server_error"}})

    def do_GET(self):
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "owned_by": "vrbench"}]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            req, cfg = parse_messages(body), generation_config(body)
        except (json.JSONDecodeError, BadRequest, AttributeError) as e:
            self._error(400, str(e))
            return
        with self.server.lock:
            responses = self.server.backend.generate([req], cfg)[0]
            n_prompt = self.server.backend.prompt_tokens(req)
        completion_tokens = sum(r.n_tokens for r in responses)
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": self.server.model_name,
            "choices": [{"index": i, "message": {"role": "assistant", "content": r.text},
                         "finish_reason": r.finish_reason} for i, r in enumerate(responses)],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": completion_tokens,
                      "total_tokens": n_prompt + completion_tokens}})


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000,
          model_name: str | None = None, ready=None) -> None:
    """Serve until interrupted. `ready(server)` is called once listening (port 0 picks a
    free port: read it from `server.server_address`)."""
    backend = HFBackend(checkpoint)
    server = Server((host, port), backend, model_name or checkpoint)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
