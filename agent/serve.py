"""`clusteragent serve OUT`: a local page to look at a run and refine it by chat.

The page is the report (report.py) with a chat box; a message is one turn of the run's stored chat thread,
taken exactly as `clusteragent refine` takes it (RefineSession.turn_and_write), so the page, the CLI and the
Python API see one history. Turns are serialised: one lock per served run, and the run folder's own lock
against other processes. The JSON API beside the page:

    GET  /api/clusters   the clusters (and top clusters) as clusters.json lists them
    GET  /api/run        the run record, with `version` (chat turns so far) and `busy` (the turn running)
    GET  /api/view       what the page redraws: the figures and the listed parts
    POST /api/chat       {"message": ...} -> {"reply", "k", "changed", "action", "moved"}
    POST /api/undo       takes back the last change; same answer

No request names a file: the server writes only the run folder's own result files.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clusteragent.errors import ClusterAgentError, ModelUnavailable
from clusteragent.redact import redact

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000)


class RunService:
    """One run folder being served: its chat session, its current result and the texts' map."""

    def __init__(self, out: str | Path, model: Any = None, model_options: dict | None = None):
        from clusteragent import ClusterAgent

        self.out = Path(out)
        self.agent = ClusterAgent.load(self.out, model=model, model_options=model_options)
        self.session = self.agent.refine_session()
        self.lock = threading.Lock()
        self.busy: str | None = None
        self._drawn: tuple[int, Any] | None = None  # (version, report.Drawn)

    @property
    def version(self) -> int:
        """How many chat turns the run has had (another process's included): what the page polls."""
        return len(self.session.state.get("turns", []))

    def current(self) -> tuple[int, Any]:
        """(version, report.Drawn) for the run as it stands, drawn once per version."""
        from clusteragent.report import drawn
        from clusteragent.run_folder import read_run_record

        version = self.version
        if self._drawn is None or self._drawn[0] != version:
            self._drawn = (version, drawn(self.session.result(run=read_run_record(self.out)), self.agent.map_))
        return self._drawn

    def page(self) -> str:
        from clusteragent.report import render

        version, page = self.current()
        return render(page, served=True, version=version)

    def view(self) -> str:
        from clusteragent.report import view_json

        version, page = self.current()
        return view_json(page, version)

    def turn(self, message: str | None, undo: bool = False) -> dict:
        with self.lock:
            self.busy = "undo" if undo else message
            try:
                reply = self.session.turn_and_write(message, self.out, undo=undo)
            finally:
                self.busy = None
        return {"reply": reply.text, "k": reply.k_after, "changed": reply.changed, "action": reply.action,
                "moved": reply.moved}


def create_app(service: RunService, allowed_hosts: list[str] | None = None):
    """The FastAPI app over one served run. `allowed_hosts`: the Host headers accepted (default: loopback
    names only, so a page elsewhere cannot reach the server through DNS rebinding)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = FastAPI(title="clusteragent", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or list(LOOPBACK))

    @app.middleware("http")
    async def json_posts_only(request: Request, call_next):
        # A form or text/plain POST from another site needs no CORS preflight; a JSON one does, and is refused.
        if request.method == "POST" and not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"detail": "send JSON (Content-Type: application/json)."}, status_code=415)
        return await call_next(request)

    @app.exception_handler(ClusterAgentError)
    async def user_error(request: Request, error: ClusterAgentError):
        status = 503 if isinstance(error, ModelUnavailable) else 400
        return JSONResponse({"detail": redact(str(error))}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return service.page()

    @app.get("/api/clusters")
    def clusters() -> dict:
        result = service.current()[1].result
        return {"k": result.k, "levels": result.levels, "clusters": result.clusters, "top_clusters": result.top_clusters}

    @app.get("/api/run")
    def run() -> dict:
        version, page = service.current()
        return {**page.result.run, "version": version, "busy": service.busy}

    @app.get("/api/view")
    def view() -> Response:
        return Response(service.view(), media_type="application/json")

    @app.post("/api/chat")
    def chat(request: ChatRequest) -> dict:
        if not request.message.strip():
            raise HTTPException(400, "say what to change, e.g. 'merge \"A\" and \"B\"'.")
        return service.turn(request.message)

    @app.post("/api/undo")
    def undo() -> dict:
        return service.turn(None, undo=True)

    return app


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0):
    """Serve `app` with uvicorn from a thread of this process (port 0: a free one); yields its base URL.
    For notebooks, tests and scripts; `serve` is the blocking command."""
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} did not start")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)


def serve(out: str | Path, host: str = "127.0.0.1", port: int = 8765, model: Any = None,
          model_options: dict | None = None) -> None:
    """Serve the run in `out` until interrupted (uvicorn)."""
    import sys

    import uvicorn

    from clusteragent.prompt_state import reading_ahead

    service = RunService(out, model=model, model_options=model_options)
    service.current()  # the map and the first view before the first request
    loopback = host in LOOPBACK
    if not loopback:
        print(f"clusteragent: warning: serving on {host}: anyone who can reach this address can read the texts "
              "and change the run. Use the default 127.0.0.1 unless you mean it.", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"clusteragent: serving {out} on http://{shown}:{port}/ (Ctrl+C stops)", file=sys.stderr, flush=True)
    app = create_app(service, allowed_hosts=None if loopback else ["*"])
    with reading_ahead(service.session):  # the model reads the cluster listing while the page is looked at
        uvicorn.run(app, host=host, port=port, log_level="warning")
