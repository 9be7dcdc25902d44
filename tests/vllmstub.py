"""A stand-in for a vLLM-style OpenAI-compatible server on 127.0.0.1, computing with a real transformers model:
OpenAI's legacy log-prob lists with vLLM's "token_id:N" tokens (`return_tokens_as_token_ids`), `echo` with prompt
log-probs, streaming (greedy), and vLLM's /tokenize and /detokenize. No llama.cpp extensions (no ids, no bytes)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class VllmStub:
    """`VllmStub(model, tokenizer, name).start()`; `.base_url` is …/v1; `.requests` lists the paths asked for."""

    def __init__(self, model, tokenizer, name: str = "stub-smol", max_model_len: int = 2048):
        self.model, self.tokenizer, self.name, self.max_model_len = model, tokenizer, name, max_model_len
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.lock = threading.Lock()  # one forward at a time

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "VllmStub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ the model's numbers

    @torch.inference_mode()
    def logprobs(self, ids: list[int]) -> torch.Tensor:
        """Log-probs (seq, vocab) of the token after each position of `ids`."""
        with self.lock:
            logits = self.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
        return torch.log_softmax(logits, -1)

    @staticmethod
    def top(row: torch.Tensor, n: int) -> dict:
        values, idx = row.topk(n)
        return {f"token_id:{i}": float(v) for i, v in zip(idx.tolist(), values.tolist())}

    def completion(self, body: dict) -> tuple[list[int], dict]:
        """(generated ids, legacy logprobs) for a greedy completion, the prompt echoed when asked."""
        ids = body["prompt"][0] if isinstance(body["prompt"][0], list) else body["prompt"]
        n = int(body.get("logprobs") or 1)
        out, tokens, chosen, tops = list(ids), [], [], []
        if body.get("echo"):
            lp = self.logprobs(ids)
            tokens = [f"token_id:{i}" for i in ids]
            chosen = [None] + [float(lp[j - 1, ids[j]]) for j in range(1, len(ids))]
            tops = [None] + [self.top(lp[j - 1], n) for j in range(1, len(ids))]
        for _ in range(int(body.get("max_tokens") or 16)):
            row = self.logprobs(out)[-1]
            token = int(row.argmax())
            tokens.append(f"token_id:{token}")
            chosen.append(float(row[token]))
            tops.append(self.top(row, n))
            out.append(token)
        return out[len(ids):], {"tokens": tokens, "token_logprobs": chosen, "top_logprobs": tops}

    # ------------------------------------------------------------------ HTTP

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                stub.requests.append(f"GET {self.path}")
                if self.path == "/v1/models":
                    return self._json(200, {"object": "list", "data": [
                        {"id": stub.name, "object": "model", "owned_by": "vllm", "max_model_len": stub.max_model_len}]})
                self._json(404, {"error": {"message": "Not Found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                stub.requests.append(f"POST {self.path}")
                if self.path == "/tokenize":
                    ids = stub.tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]
                    return self._json(200, {"tokens": ids, "count": len(ids), "max_model_len": stub.max_model_len})
                if self.path == "/detokenize":
                    return self._json(200, {"prompt": stub.tokenizer.decode(body["tokens"])})
                if self.path != "/v1/completions":
                    return self._json(404, {"error": {"message": "Not Found"}})
                if body.get("temperature", 1.0) != 0:
                    return self._json(400, {"error": {"message": "this stand-in samples greedily only"}})
                new, lp = stub.completion(body)
                text = stub.tokenizer.decode(new)
                if not body.get("stream"):
                    return self._json(200, {"object": "text_completion", "model": stub.name, "choices": [
                        {"index": 0, "text": text, "logprobs": lp, "finish_reason": "length"}]})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for k, token in enumerate(new):
                    chunk = {"tokens": [lp["tokens"][k]], "token_logprobs": [lp["token_logprobs"][k]],
                             "top_logprobs": [lp["top_logprobs"][k]]}
                    event = {"object": "text_completion", "model": stub.name, "choices": [
                        {"index": 0, "text": stub.tokenizer.decode([token]), "logprobs": chunk, "finish_reason": None}]}
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                last = {"object": "text_completion", "model": stub.name,
                        "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}]}
                self.wfile.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
