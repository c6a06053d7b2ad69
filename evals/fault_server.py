"""A loopback OpenAI-compatible chat server that fails on purpose: the harness of the reliability tests and
of the soak benchmark (evals/bench_soak.py). It answers every request with a valid instance of the
requested JSON schema, chosen deterministically from the request's last message, except where told to
fail; it counts and records every request, so a test can check what reached the server.

Not a model: it never runs in a product path, only where a test or benchmark starts it on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from typing import Any


def schema_instance(schema: dict, seed_text: str, defs: dict | None = None, path: str = "") -> Any:
    """A valid instance of a (pydantic-made) JSON schema, chosen deterministically from `seed_text`."""
    import hashlib

    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return schema_instance(defs[schema["$ref"].split("/")[-1]], seed_text, defs, path)
    if "anyOf" in schema:
        return schema_instance(schema["anyOf"][0], seed_text, defs, path)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        digest = int(hashlib.sha256((seed_text + path).encode()).hexdigest(), 16)
        return schema["enum"][digest % len(schema["enum"])]
    kind = schema.get("type")
    if kind == "object":
        return {k: schema_instance(v, seed_text, defs, f"{path}.{k}") for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        n = max(schema.get("minItems", 0), min(2, schema.get("maxItems", 2)))
        return [schema_instance(schema.get("items", {}), seed_text, defs, f"{path}[{i}]") for i in range(n)]
    if kind == "string":
        text = path.strip(".").replace(".", " ")[:schema.get("maxLength", 40)] or "x"
        return text.ljust(schema.get("minLength", 0), "x")
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return None



class FakeOpenAIServer:
    """A loopback OpenAI-compatible chat server for tests: it answers any request with a valid instance of
    the requested JSON schema (deterministic in the request's last message), and fails on purpose.

    Args:
        faults: {request number (1-based): fault} or a callable(number) -> fault or None. Faults: an HTTP
            status (429, 500, ...), "invalid_json", "empty", ("slow", seconds), "reset" (the connection is
            closed without an answer), "echo_key" (401 whose message repeats the request's key).
        delay: seconds to wait before every answer.
    """

    def __init__(self, faults=None, delay: float = 0.0):
        import http.server
        import json

        self.faults = faults or {}
        self.delay = delay
        self.requests = 0
        self.headers: list[dict] = []
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                import time as _time

                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with outer._lock:
                    outer.requests += 1
                    number = outer.requests
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    outer.bodies.append(body)
                fault = outer.faults(number) if callable(outer.faults) else outer.faults.get(number)
                if outer.delay:
                    _time.sleep(outer.delay)
                if isinstance(fault, tuple) and fault[0] == "slow":
                    _time.sleep(fault[1])
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if fault == "echo_key":
                    key = self.headers.get("Authorization", "")
                    return self._send(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
                if isinstance(fault, int):
                    return self._send(fault, {"error": {"message": f"injected status {fault}"}})
                schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
                last = body.get("messages", [{}])[-1].get("content", "")
                content = json.dumps(schema_instance(schema, str(last)))
                if fault == "invalid_json":
                    content = "{this is not json"
                elif fault == "empty":
                    content = ""
                self._send(200, {"id": f"c{number}", "object": "chat.completion", "created": 0, "model": body.get("model"),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that hangs up mid-answer (a timeout, a killed run) is part of the test

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
