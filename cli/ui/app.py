"""The dashboard's web application (Starlette): pages rendered on the server from the job store,
a few JSON routes the pages poll for live updates, and the actions that change something.

Safety, since a browser on this machine can be made to send requests by any web page:
- every request must name this server in its Host header (no DNS rebinding);
- every action (cancel, clean up, chat, plan) carries the session token in ``X-Tuneport-Token``;
  on 127.0.0.1 the pages hold it (other sites cannot read them), on any other bind nobody gets it
  but the person who started the server and saw it printed;
- what reaches a page is redacted: the store holds no secrets, and URLs and settings are masked
  again on the way out.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tuneport.cli.ui import views
from tuneport.errors import TuneportError, redact
from tuneport.jobs.store import JobStore, open_store
from tuneport.schemas import JobState

HERE = Path(__file__).resolve().parent
TOKEN_HEADER = "X-Tuneport-Token"
PAGE_SIZE = 100
MAX_PAGE = 5000


@dataclass
class UISettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    reports: list[Path] = field(default_factory=list)
    store: JobStore | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def allowed_hosts(self) -> list[str]:
        hosts = {"127.0.0.1", "localhost", "::1", "[::1]", self.host}
        if not self.loopback:
            return ["*"] if self.host in ("0.0.0.0", "::") else sorted(hosts)
        return sorted(hosts)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _problem(message: str, status: int, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": redact(message), "hint": hint and redact(hint)}, status)


def _authorized(request: Request, settings: UISettings) -> bool:
    given = request.headers.get(TOKEN_HEADER, "")
    return hmac.compare_digest(given.encode(), settings.token.encode())


def _int(value: str | None, default: int, *, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return max(low, min(high, number))


class Dashboard:
    """The routes, bound to one store and one token."""

    def __init__(self, settings: UISettings) -> None:
        self.settings = settings
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["page_token"] = settings.token if settings.loopback else ""

    @property
    def store(self) -> JobStore:
        return self.settings.store or open_store()

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    # --- jobs ------------------------------------------------------------------------------

    def _rows(self, request: Request) -> list[dict[str, Any]]:
        limit = _int(request.query_params.get("limit"), PAGE_SIZE, low=1, high=MAX_PAGE)
        provider = request.query_params.get("provider") or None
        state = request.query_params.get("state") or None
        states = [JobState(state)] if state in {s.value for s in JobState} else None
        records = self.store.list_jobs(limit, provider=provider, states=states)
        from tuneport.providers import registry

        prices = registry.load_price_table(providers=sorted({r.provider for r in records}))
        return [views.job_row(r, prices) for r in records]

    async def jobs_page(self, request: Request) -> Response:
        rows = self._rows(request)
        return self.page(request, "jobs.html", rows=rows, query=dict(request.query_params))

    async def jobs_api(self, request: Request) -> Response:
        return JSONResponse({"jobs": self._rows(request)})

    def _job(self, request: Request) -> dict[str, Any]:
        record = self.store.get(request.path_params["job_id"])
        events = self.store.events(record.id)
        curve = views.loss_curve(events)
        return {
            "row": views.job_row(record),
            "detail": views.job_detail(record),
            "events": [
                {
                    "time": e.created_at.strftime("%Y-%m-%d %H:%M:%S") if e.created_at else "",
                    "level": e.level,
                    "message": redact(e.message),
                }
                for e in events[-500:]
            ],
            "event_count": len(events),
            "loss_svg": views.loss_svg(curve),
            "train_points": len(curve.train),
            "valid_points": len(curve.valid),
            "checkpoints": views.checkpoints(events),
        }

    async def job_page(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except TuneportError as exc:
            return self.page(request, "error.html", message=redact(exc.message), status_code=404)
        return self.page(request, "job.html", job=job)

    async def job_api(self, request: Request) -> Response:
        try:
            job = self._job(request)
        except TuneportError as exc:
            return _problem(exc.message, 404, exc.hint)
        return JSONResponse({k: v for k, v in job.items() if k != "loss_svg"})

    # --- actions ---------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        if not _authorized(request, self.settings):
            return _problem("this action needs the token printed when `tuneport ui` started", 403)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or body.get("confirm") is not True:
            return _problem("not confirmed: nothing was changed", 400)
        action = request.path_params["action"]
        job_id = request.path_params["job_id"]
        if action not in ("cancel", "cleanup"):
            return _problem(f"unknown action {action!r}: cancel or cleanup", 404)
        try:
            return JSONResponse(self._act(action, job_id))
        except TuneportError as exc:
            return _problem(exc.message, 409, exc.hint)

    def _act(self, action: str, job_id: str) -> dict[str, Any]:
        from tuneport.jobs.cleanup import cleanup_job
        from tuneport.jobs.launch import reconcile
        from tuneport.jobs.resolve import provider_for_record, ref_of
        from tuneport.jobs.watch import poll_once

        store = self.store
        record = store.get(job_id)
        backend = provider_for_record(record, store)
        record = reconcile(store, record, backend)
        if action == "cancel":
            if not record.state.terminal:
                backend.cancel(ref_of(record))
            record = poll_once(store, record, backend).record
            return {"id": record.id, "state": record.state.value}
        removed = cleanup_job(record, backend, store)
        return {"id": record.id, "cleaned": True, "removed": [redact(r) for r in removed]}

    # --- plan ------------------------------------------------------------------------------

    async def plan_page(self, request: Request) -> Response:
        return self.page(request, "plan.html")

    async def plan_api(self, request: Request) -> Response:
        if not _authorized(request, self.settings):
            return _problem("planning reads files: it needs the token printed at start", 403)
        body = await request.json()
        data = body.get("data") if isinstance(body, dict) else None
        method = body.get("method", "sft") if isinstance(body, dict) else "sft"
        if not isinstance(data, str) or not data.strip() or method not in ("sft", "dpo"):
            return _problem("give a dataset file path (and method sft or dpo)", 400)
        from tuneport.jobs.plan import as_json, plan

        try:
            rows = plan(Path(data).expanduser(), method="dpo" if method == "dpo" else "sft")
        except TuneportError as exc:
            return _problem(exc.message, 400, exc.hint)
        return JSONResponse({"rows": as_json(rows)})

    # --- chat playground ---------------------------------------------------------------------

    async def chat_page(self, request: Request) -> Response:
        return self.page(request, "chat.html")

    async def chat_api(self, request: Request) -> Response:
        if not _authorized(request, self.settings):
            return _problem("chat calls paid models: it needs the token printed at start", 403)
        body = await request.json()
        if not isinstance(body, dict):
            return _problem("send a JSON object", 400)
        target, prompt = body.get("target"), body.get("prompt")
        provider = body.get("provider") or None
        if not isinstance(target, str) or not target.strip() or not isinstance(prompt, str):
            return _problem(
                "give a model (job id, tuned model or provider:model) and a prompt", 400
            )
        from tuneport.jobs.chat import open_chat

        try:
            session = open_chat(target.strip(), provider=provider, store=self.store)
        except TuneportError as exc:
            return _problem(exc.message, 400, exc.hint)
        return StreamingResponse(_stream(session, prompt), media_type="text/plain; charset=utf-8")

    # --- reports ---------------------------------------------------------------------------

    def _reports(self) -> list[views.Report]:
        from tuneport.paths import home

        return views.find_reports([*self.settings.reports, home() / "ports"])

    async def reports_page(self, request: Request) -> Response:
        reports = self._reports()
        return self.page(request, "reports.html", reports=list(enumerate(reports)))

    async def report_page(self, request: Request) -> Response:
        reports = self._reports()
        index = _int(request.path_params.get("n"), -1, low=-1, high=len(reports))
        if not 0 <= index < len(reports):
            return self.page(request, "error.html", message="no such report", status_code=404)
        return self.page(request, "report.html", report=reports[index])

    async def favicon(self, request: Request) -> Response:
        return Response((HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml")


def _stream(session: Any, prompt: str) -> Iterator[str]:
    """The reply as it is generated; an error ends the stream with one line (never silent)."""
    from tuneport.providers.base import StreamingChat

    try:
        if isinstance(session.provider, StreamingChat):
            got = False
            for piece in session.provider.chat_stream(
                session.model, [*session.history, _user(prompt)], session.options
            ):
                got = got or bool(piece)
                yield piece
            if not got:
                yield "\n[error: the model sent an empty reply]"
        else:
            reply = session.send(prompt)
            yield reply.content or "\n[error: the model sent an empty reply]"
    except TuneportError as exc:
        yield f"\n[error: {redact(exc.message)}]"


def _user(text: str) -> Any:
    from tuneport.schemas import Message

    return Message(role="user", content=text)


def create_app(settings: UISettings | None = None) -> Starlette:
    settings = settings or UISettings()
    ui = Dashboard(settings)
    routes = [
        Route("/", ui.jobs_page),
        Route("/api/jobs", ui.jobs_api),
        Route("/jobs/{job_id}", ui.job_page),
        Route("/api/jobs/{job_id}", ui.job_api),
        Route("/api/jobs/{job_id}/{action:str}", ui.action, methods=["POST"]),
        Route("/plan", ui.plan_page),
        Route("/api/plan", ui.plan_api, methods=["POST"]),
        Route("/chat", ui.chat_page),
        Route("/api/chat", ui.chat_api, methods=["POST"]),
        Route("/reports", ui.reports_page),
        Route("/reports/{n}", ui.report_page),
        Route("/favicon.ico", ui.favicon),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)],
    )
    app.state.settings = settings
    return app
