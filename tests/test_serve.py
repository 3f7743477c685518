"""`vrbench serve` driven by the official openai client, and the `openai` backend against it:
greedy answers through the server equal the `hf` backend's, one prompt at a time."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends.openai_compat import OpenAIBackend, data_url
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from helpers import ScriptedBackend, image_key
from tasks import decode_images
from vrbench.errors import VrbenchError

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def server(tiny_model):
    proc = subprocess.Popen([sys.executable, "-m", "vrbench", "serve", tiny_model,
                             "--port", "0", "--model-name", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    url = line.split(" on ")[1].split()[0]
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_official_client_talks_to_vrbench_serve(server):
    client = openai.OpenAI(base_url=server, api_key="none")
    assert [m.id for m in client.models.list()] == ["tiny"]
    img = Image.new("RGB", (56, 56), (220, 30, 30))
    out = client.chat.completions.create(
        model="tiny", max_tokens=8, temperature=0, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(img)}},
            {"type": "text", "text": "What colour is it?"}]}])
    (choice,) = out.choices
    assert choice.finish_reason in ("stop", "length") and isinstance(choice.message.content, str)
    assert 1 <= out.usage.completion_tokens <= 8
    assert out.usage.prompt_tokens > 10  # the chat template and the image tokens count
    sampled = client.chat.completions.create(
        model="tiny", max_tokens=4, temperature=1.0, n=3, seed=1,
        messages=[{"role": "user", "content": "Hello"}])
    assert [c.index for c in sampled.choices] == [0, 1, 2]
    with pytest.raises(openai.BadRequestError, match="data URLs"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])


def test_openai_backend_through_the_server_matches_hf(server, tiny_model, tmp_path):
    common = ["--tasks", "count_shapes,bar_chart", "--limit", "4", "--max-new-tokens", "12",
              "--no-progress"]
    for args in (["--backend", "openai", "--model", "tiny", "--base-url", server,
                  "--concurrency", "4", "--output", str(tmp_path / "api")],
                 ["--model", tiny_model, "--batch-size", "1", "--output", str(tmp_path / "hf")]):
        res = subprocess.run([sys.executable, "-m", "vrbench", "eval", *args, *common],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
    api = {(r["task"], r["doc_id"]): r for r in read_jsonl(tmp_path / "api" / "samples.jsonl")}
    hf = {(r["task"], r["doc_id"]): r for r in read_jsonl(tmp_path / "hf" / "samples.jsonl")}
    assert api.keys() == hf.keys() and len(api) == 8
    for k in api:
        assert api[k]["resps"] == hf[k]["resps"]
        assert api[k]["analysis"][0]["n_tokens"] == hf[k]["analysis"][0]["n_tokens"]
    cfg = json.loads((tmp_path / "api" / "config.json").read_text())
    assert cfg["backend"] == "openai" and cfg["endpoint"] == server


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first `fail` requests, then a fixed completion."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls += 1
        if self.server.calls <= self.server.fail:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop", "message": {
                               "role": "assistant", "content": "\\boxed{3}"}}],
                           "usage": {"prompt_tokens": 5, "completion_tokens": 4,
                                     "total_tokens": 9}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("fail, retries, ok", [(2, 3, True), (3, 2, False)])
def test_backend_retries_with_backoff(fail, retries, ok):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    srv.calls, srv.fail = 0, fail
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    be = OpenAIBackend("m", base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1",
                       max_retries=retries, backoff=0.01)
    try:
        if ok:
            (resp,) = be.generate([Request("q")], GenerationConfig())[0]
            assert (resp.text, resp.n_tokens, resp.finish_reason) == ("\\boxed{3}", 4, "stop")
            assert srv.calls == fail + 1
        else:
            with pytest.raises(VrbenchError, match="failed 3 times"):
                be.generate([Request("q")], GenerationConfig())
    finally:
        srv.shutdown()


def test_openai_backend_needs_a_server_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(VrbenchError, match="--base-url"):
        OpenAIBackend("m")


class _Judge(BaseHTTPRequestHandler):
    """A judge that calls a response correct when it contains "42" anywhere: unlike the
    rule-based scorer, it ignores where the answer stands."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][0]["content"][-1]["text"]
        response = text.split("Student's response:\n", 1)[1]
        verdict = "correct" if "42" in response else "incorrect"
        out = json.dumps({"id": "j", "object": "chat.completion", "created": 0, "model": "judge",
                          "choices": [{"index": 0, "finish_reason": "stop", "message": {
                              "role": "assistant", "content": verdict}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def test_llm_judge_scores_beside_the_rules(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    t = tasks.load("count_shapes")
    samples = t.samples(t.eval_split(), 8)
    # responses 0-3 box the right answer; 4-5 say 42 unboxed after a boxed wrong answer;
    # 6-7 are wrong for both scorers
    texts = [s.solution for s in samples[:4]] + ["\\boxed{99} or maybe 42"] * 2 + [
        "\\boxed{99}"] * 2
    backend = ScriptedBackend({image_key(decode_images(s)[0]): [x]
                               for s, x in zip(samples, texts, strict=True)})
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        out = evaluate("scripted", [t], limit=8, engine=backend, judge_model="judge",
                       judge_base_url=url,
                       output=tmp_path / "run", progress=False)
    finally:
        srv.shutdown()
    r = out["results"]["count_shapes"]
    assert r["acc"] == 0.5
    # the judge says right only where "42" appears (4, 5): the scorers agree on 6 and 7
    judged = [rec["judge_correct"][0] for rec in read_jsonl(tmp_path / "run" / "samples.jsonl")]
    expected = ["42" in x for x in texts]
    assert judged == expected and r["judge_acc"] == 0.25
    assert r["judge_agreement"] == pytest.approx(2 / 8)
    # kappa by hand: p_rule = .5, p_judge = .25, chance = .5*.25 + .5*.75 = .5
    assert r["judge_kappa"] == pytest.approx((0.25 - 0.5) / (1 - 0.5))
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["judge"]["model"] == "judge" and len(cfg["judge"]["prompt_sha256"]) == 64
