"""`wakeward review`'s web app: the clip store in the owner's browser (Starlette, Jinja2
templates, served by uvicorn).

Who may use it: whoever holds the per-launch token. The URL printed at launch carries it
(``?token=``); the first request with it gets it back as a cookie (HttpOnly, SameSite=Strict)
and is redirected to the same page without it, so it stays out of the address bar. Any
request with neither the token nor the cookie is refused (401), one with a wrong one too
(403); static files and pictures included.

What changes the store (label, delete, purge, revoke) is a POST, and a POST must carry the
page's per-launch CSRF token in its form and come from the page's own origin (Origin, else
Referer, when the browser sends one): a form on another site is refused (403), even with the
cookie (which SameSite=Strict keeps from it anyway). Deleting and purging ask first, on a
page of their own (a GET, which changes nothing).

Every request must also name this server in its Host header (localhost, 127.0.0.1, ::1, the
--host given; `Hosts`): a DNS rebinding page, under a name of its own pointed at 127.0.0.1, is
refused before the token is looked at.

The pages are server-rendered; the one script is static/review.js (CSP: scripts from this
server only). It makes the clips page follow the store while `listen` or `satellite` add to
it: it polls /clips/updates for the clips after the newest it has and puts the rows the server
rendered at the top, without a reload. The clips page shows MAX_SHOWN clips at a time, with
newer/older links by clip id (`page_of`). The false-wakes page (stats.py) draws false wakes
per day per model as inline SVG and the FA/h over the hours each device listened (the
floor over its current boot where its statuses do not say); the retrain
pages (retrain.py) run `wakeward train` with the owner's labels and follow its output.

Everything goes through ClipStore's API and Pairing's; every string from a device (its id,
model name, end reason, status) reaches the page through Jinja2's autoescaping.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
import secrets
import socket
import time
import webbrowser
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from wakeward import store as clipstore
from wakeward.errors import WakewardError
from wakeward.pairing import Pairing
from wakeward.printable import printable
from wakeward.review import picture, retrain, stats
from wakeward.store import Clip, ClipStore

HERE = Path(__file__).parent
TOKEN_BYTES = 32
SCORE_FULL_SCALE = 255  # a clip's score is the model's output, 0..255
MAX_SHOWN = 500  # clips on one page
POLL_MS = 3000  # how often the clips page asks for new clips
DAY_S = 86400
KB = 1000
_LABEL_CHOICES = (*clipstore.LABELS, "clear")
_STATUS_FIELDS = (
    ("clips_sent", "clips sent"),
    ("clips_acked", "acknowledged"),
    ("queued", "queued"),
    ("clips_dropped", "dropped"),
    ("audio_bytes", "audio bytes sent"),
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on POSTs
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_UNAUTHORIZED = (
    "401: this page needs the token in the URL `wakeward review` printed when it started "
    "(each launch makes a new one)"
)
_FORBIDDEN_TOKEN = "403: wrong token: use the URL this launch of `wakeward review` printed"
_FORBIDDEN_CROSS_SITE = "403: refused: this request did not come from the review page itself"
_WRONG_HOST = (
    "400: refused: this server answers to its own address only (localhost, 127.0.0.1 or the "
    "--host it was given); a page under another name is a DNS rebinding attempt"
)
_HOST_HEADER = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::[0-9]{1,5})?$"
)
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Secrets:
    """A launch's secrets: the token in its URL (and its cookie), and the forms' CSRF
    token. The cookie's name carries the port, so two launches on one PC do not collide."""

    token: str
    csrf: str
    cookie: str

    @classmethod
    def new(cls, port: int) -> Secrets:
        return cls(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            csrf=secrets.token_urlsafe(TOKEN_BYTES),
            cookie=f"wakeward_review_{port}",
        )


@dataclass(frozen=True)
class Hosts:
    """The names this launch answers to in the Host header. A DNS rebinding attack points
    a name of the attacker's (evil.example) at 127.0.0.1, so a page from there reaches this
    server as its own origin; its requests carry `Host: evil.example` and are refused (400),
    before the token is even looked at. Answered: localhost, 127.0.0.1, ::1, the --host
    given and the address bound; on every interface (0.0.0.0) also this PC's host name and
    any IP address (an address is no name an attacker can point elsewhere)."""

    names: frozenset[str]
    any_address: bool = False

    @classmethod
    def of(cls, host: str, bound: str | None = None) -> Hosts:
        names = {*_LOOPBACK_NAMES, host.strip("[]").lower()}
        if bound:
            names.add(bound.lower())
        every = host in _EVERY_INTERFACE
        if every:
            names.add(socket.gethostname().lower())
        names.discard("")
        return cls(frozenset(names), any_address=every)

    def allows(self, header: str | None) -> bool:
        m = _HOST_HEADER.match(header or "")
        if m is None:
            return False
        name = (m["v6"] or m["name"]).lower()
        if name in self.names:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


class _HostGate(BaseHTTPMiddleware):
    """Requests naming another host than this launch's are refused (`Hosts`)."""

    def __init__(self, app: Any, hosts: Hosts) -> None:
        super().__init__(app)
        self.hosts = hosts

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not self.hosts.allows(request.headers.get("host")):
            return PlainTextResponse(_WRONG_HOST, status_code=400)
        return await call_next(request)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class _TokenGate(BaseHTTPMiddleware):
    """Every request needs the launch's token: in the query (then it becomes a cookie) or
    the cookie."""

    def __init__(self, app: Any, secrets: Secrets) -> None:
        super().__init__(app)
        self.secrets = secrets

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.query_params.get("token")
        response: Response
        if given is not None:
            if not _same(given, self.secrets.token):
                return PlainTextResponse(_FORBIDDEN_TOKEN, status_code=403)
            if request.method in ("GET", "HEAD"):  # the token leaves the address bar
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response = RedirectResponse(target, status_code=303)
            else:
                response = await call_next(request)
            response.set_cookie(
                self.secrets.cookie, self.secrets.token, httponly=True, samesite="strict"
            )
        else:
            cookie = request.cookies.get(self.secrets.cookie)
            if cookie is None:
                return PlainTextResponse(_UNAUTHORIZED, status_code=401)
            if not _same(cookie, self.secrets.token):
                return PlainTextResponse(_FORBIDDEN_TOKEN, status_code=403)
            response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def same_origin(request: Request) -> bool:
    """Whether a request came from this server's own pages: its Origin (else its Referer),
    when the browser sent one, is this server's. Neither header: no browser's cross-site
    form (browsers send Origin with every POST), and the CSRF token is still needed."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" == own
    return True


def size_text(n: int) -> str:
    if n < KB:
        return f"{n} B"
    if n < KB * KB:
        return f"{n / KB:.1f} kB"
    return f"{n / (KB * KB):.2f} MB"


def probability(score: int) -> str:
    return f"{score / SCORE_FULL_SCALE:.2f}"


def _safe_back(text: str | None) -> str:
    """Where a form's `back` field says to return: a clips page of this app, nothing else."""
    if text:
        parts = urlsplit(text)
        if not parts.scheme and not parts.netloc and parts.path in ("/clips", "/devices"):
            return text
    return "/clips"


@dataclass(frozen=True)
class Filters:
    """The clips page's filters, from its query string ('' or absent: any)."""

    device: str = ""
    model: str = ""
    label: str = ""
    since: str = ""  # a local date, YYYY-MM-DD (the clips received that day or later)
    until: str = ""  # a local date (the clips received that day or earlier)
    hide_deleted: bool = False

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        label = q.get("label", "")
        if label and label != "none":
            clipstore.check_label(label)
        return cls(
            device=q.get("device", ""),
            model=q.get("model", ""),
            label=label,
            since=q.get("since", ""),
            until=q.get("until", ""),
            hide_deleted=q.get("hide_deleted", "") == "1",
        )

    def query(self) -> str:
        """These filters as a query string (no paging): for links, and the page's polls."""
        pairs = [
            (key, value)
            for key, value in (
                ("device", self.device),
                ("model", self.model),
                ("label", self.label),
                ("since", self.since),
                ("until", self.until),
                ("hide_deleted", "1" if self.hide_deleted else ""),
            )
            if value
        ]
        return urlencode(pairs)

    def select(self, store: ClipStore) -> list[Clip]:
        """The matching clips, newest first."""
        since = clipstore.parse_since(self.since, "from date") if self.since else None
        until = clipstore.parse_since(self.until, "to date") + DAY_S if self.until else None
        found = store.clips(
            device=self.device or None,
            model=self.model or None,
            label=self.label or None,
            since=since,
            include_deleted=not self.hide_deleted,
        )
        if until is not None:
            found = [c for c in found if c.received_at < until]
        return found[::-1]


@dataclass(frozen=True)
class Page:
    """One page of the matching clips (newest first) and the cursors to its neighbours:
    `after=newer` shows the page of clips just newer than this one, `before=older` the one
    just older. Cursors are clip ids, not offsets, so clips arriving while the owner pages
    shift nothing."""

    clips: list[Clip]
    start: int  # how many matching clips are newer than the first shown
    matched: int
    newer: int | None
    older: int | None

    @property
    def first(self) -> bool:
        return self.start == 0


def page_of(
    found: Sequence[Clip], before: int | None, after: int | None, size: int = MAX_SHOWN
) -> Page:
    """The page of `found` (newest first) that the cursors ask for: the `size` clips older
    than clip `before`, else the `size` clips newer than clip `after`, else the newest."""
    if before is not None:
        start = next((i for i, c in enumerate(found) if c.id < before), len(found))
    elif after is not None:
        end = next((i for i, c in enumerate(found) if c.id <= after), len(found))
        start = max(0, end - size)
    else:
        start = 0
    shown = list(found[start : start + size])
    newer = shown[0].id if start > 0 and shown else None
    older = shown[-1].id if shown and start + len(shown) < len(found) else None
    return Page(shown, start, len(found), newer, older)


def _cursor(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    n = _count(text)
    if n is None:
        raise WakewardError(f"{what} {text!r}: a clip id")
    return n


class Review:
    """The app's state: the store, the pairing folder, the secrets and the templates."""

    def __init__(
        self,
        store: ClipStore,
        secrets: Secrets,
        pairing: Pairing | None,
        *,
        page_size: int = MAX_SHOWN,
        poll_ms: int = POLL_MS,
        retrainer: retrain.Retrainer | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.pairing = pairing
        self.page_size = page_size
        self.poll_ms = poll_ms
        self.retrainer = retrainer
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # device ids, model names, statuses: the device's word
            undefined=jinja2.StrictUndefined,
        )
        env.filters["local_time"] = clipstore.local_time
        env.filters["size"] = size_text
        env.filters["probability"] = probability
        env.globals["picture_width"] = picture.WIDTH
        env.globals["picture_height"] = picture.HEIGHT
        self.templates = Jinja2Templates(env=env)

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("error", None)
        return self.templates.TemplateResponse(
            request, name, {"csrf": self.secrets.csrf, **context}, status_code=status_code
        )

    async def form(self, request: Request) -> FormData:
        """A POST's form, once it has shown it came from this page (origin and CSRF token)."""
        if not same_origin(request):
            raise HTTPException(403, _FORBIDDEN_CROSS_SITE)
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not _same(given, self.secrets.csrf):
            raise HTTPException(403, _FORBIDDEN_CROSS_SITE)
        return form

    async def clip(self, request: Request) -> Clip:
        try:
            return await run_in_threadpool(self.store.get, request.path_params["clip_id"])
        except WakewardError as e:
            raise HTTPException(404, str(e)) from None

    # -- pages -----------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/clips", status_code=303)

    async def clips(self, request: Request) -> Response:
        filters = Filters.of(request)
        before = _cursor(request.query_params.get("before"), "before")
        after = _cursor(request.query_params.get("after"), "after")
        # the newest id first: the page shows clips up to it, its polls the ones after it,
        # so a clip arriving meanwhile is shown once, by the poll
        newest = await run_in_threadpool(self.store.newest_id)
        everything = await run_in_threadpool(self.store.clips)
        found = await run_in_threadpool(filters.select, self.store)
        found = [c for c in found if c.id <= newest]
        page = page_of(found, before, after, self.page_size)
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = filters.query()
        return self.page(
            request,
            "clips.html",
            clips=page.clips,
            paging=page,
            total=sum(c.id <= newest for c in everything),
            newest=newest,
            poll_ms=self.poll_ms,
            devices=sorted({c.device for c in everything}),
            models=sorted({c.model for c in everything}),
            labels=clipstore.LABELS,
            filters=filters,
            query=query,
            link=_clips_link(query),
            back=back,
            purged=_count(request.query_params.get("purged")),
        )

    async def updates(self, request: Request) -> Response:
        """What the clips page polls: the newest clip id, and the rows (rendered as on the
        page) of the clips after `after` that match the page's filters, newest first."""
        filters = Filters.of(request)
        after = _cursor(request.query_params.get("after"), "after") or 0
        newest = await run_in_threadpool(self.store.newest_id)
        body: dict[str, Any] = {"newest": newest, "added": 0, "rows": ""}
        if newest > after:
            found = await run_in_threadpool(filters.select, self.store)
            new = [c for c in found if after < c.id <= newest]
            everything = await run_in_threadpool(self.store.clips)
            body["added"] = len(new)
            body["total"] = sum(c.id <= newest for c in everything)
            body["matched"] = sum(c.id <= newest for c in found)
            if new:
                rows = self.templates.env.get_template("clip_rows.html")
                body["rows"] = rows.render(
                    clips=new, csrf=self.secrets.csrf, back=_clips_link(filters.query())
                )
        return JSONResponse(body)

    async def false_wakes(self, request: Request) -> Response:
        text = request.query_params.get("days", "")
        days = _count(text) if text else stats.DEFAULT_DAYS
        if days is None or not stats.MIN_DAYS <= days <= stats.MAX_DAYS:
            raise WakewardError(f"days {text!r}: {stats.MIN_DAYS} to {stats.MAX_DAYS}")
        everything = await run_in_threadpool(self.store.clips)
        today = stats.local_day(time.time())
        chart = stats.false_wakes_per_day(everything, today, days)
        names, error = await run_in_threadpool(self._device_names, everything)
        rows, missing = await run_in_threadpool(stats.exposures, self.store, names, everything)
        return self.page(
            request,
            "false_wakes.html",
            chart=chart,
            days=days,
            exposures=rows,
            missing=missing,
            overall=stats.overall(rows),
            error=error,
        )

    async def audio(self, request: Request) -> Response:
        clip = await self.clip(request)
        if clip.deleted or not clip.path.is_file():
            raise HTTPException(404, f"clip {clip.id}: its audio is gone")
        return FileResponse(clip.path, media_type="audio/wav")

    async def picture(self, request: Request) -> Response:
        clip = await self.clip(request)
        return Response(await run_in_threadpool(_picture_of, clip), media_type="image/png")

    async def label(self, request: Request) -> Response:
        form = await self.form(request)
        clip = await self.clip(request)
        choice = form.get("label")
        if choice not in _LABEL_CHOICES:
            raise WakewardError(f"label {choice!r}: use one of {', '.join(_LABEL_CHOICES)}")
        label = None if choice == "clear" else str(choice)
        await run_in_threadpool(self.store.label, clip.id, label)
        return self._back(form, f"clip-{clip.id}")

    async def confirm_delete(self, request: Request) -> Response:
        clip = await self.clip(request)
        back = _safe_back(request.query_params.get("back"))
        return self.page(request, "delete.html", clip=clip, back=back)

    async def delete(self, request: Request) -> Response:
        form = await self.form(request)
        clip = await self.clip(request)
        await run_in_threadpool(self.store.delete, clip.id)
        return self._back(form, f"clip-{clip.id}")

    async def purge_preview(self, request: Request) -> Response:
        text = request.query_params.get("older_than", "")
        now = time.time()
        age = clipstore.parse_age(text, "older than")
        going = await run_in_threadpool(lambda: self.store.purge_victims(age, now=now))
        going.reverse()  # newest first, as the clips page
        return self.page(request, "purge.html", clips=going, older_than=text, now=repr(now))

    async def purge(self, request: Request) -> Response:
        form = await self.form(request)
        age = clipstore.parse_age(str(form.get("older_than", "")), "older than")
        try:
            at = float(str(form.get("now", "")))
        except ValueError:
            at = math.nan
        if not math.isfinite(at) or at > time.time():
            raise WakewardError("purge: the preview's time is missing or wrong; preview again")
        gone = await run_in_threadpool(self.store.purge, age, now=at)  # what the preview showed
        return RedirectResponse(f"/clips?purged={len(gone)}", status_code=303)

    # -- retrain from my labels --------------------------------------------------------------

    def _retrainer(self) -> retrain.Retrainer:
        if self.retrainer is None:
            raise WakewardError("retraining is off in this launch (no --models folder)")
        return self.retrainer

    async def retrain_page(self, request: Request) -> Response:
        r = self._retrainer()
        models = await run_in_threadpool(r.models)
        kept, deleted = await run_in_threadpool(r.false_wakes)
        jobs = await run_in_threadpool(r.jobs)
        return self.page(
            request,
            "retrain.html",
            models=list(models.values()),
            models_dir=r.models_dir,
            kept=kept,
            deleted=deleted,
            jobs=jobs,
            running=r.running(),
            takes=request.query_params.get("takes", ""),
        )

    async def retrain_start(self, request: Request) -> Response:
        form = await self.form(request)
        r = self._retrainer()
        job = await run_in_threadpool(
            r.start, str(form.get("model", "")), str(form.get("takes", ""))
        )
        return RedirectResponse(f"/retrain/{job.id}", status_code=303)

    async def retrain_job(self, request: Request) -> Response:
        r = self._retrainer()
        job = await run_in_threadpool(r.job, request.path_params["job"])
        text, offset = await run_in_threadpool(r.log_after, job, 0)
        old = retrain.read_info(job.old_folder / f"{job.model}.wakeward.json")
        new = job.new_info if job.state == "done" else None
        return self.page(
            request,
            "retrain_job.html",
            job=job,
            log=text,
            offset=offset,
            old=retrain.figures_of(old or {}),
            new=retrain.figures_of(new or {}),
            old_scope=(old or {}).get("evaluation_scope"),
            deploy=retrain.deploy_command(job) if new else None,
            compare=retrain.compare_command(job) if new else None,
            poll_ms=self.poll_ms,
        )

    async def retrain_log(self, request: Request) -> Response:
        r = self._retrainer()
        job = await run_in_threadpool(r.job, request.path_params["job"])
        offset = _count(request.query_params.get("offset", "0"))
        if offset is None:
            raise WakewardError("offset: a byte count")
        text, after = await run_in_threadpool(r.log_after, job, offset)
        return JSONResponse(
            {"text": text, "offset": after, "state": job.state, "returncode": job.returncode}
        )

    async def retrain_cancel(self, request: Request) -> Response:
        await self.form(request)
        r = self._retrainer()
        job = await run_in_threadpool(r.cancel, request.path_params["job"])
        return RedirectResponse(f"/retrain/{job.id}", status_code=303)

    async def devices(self, request: Request) -> Response:
        rows, error = await run_in_threadpool(self._device_rows)
        return self.page(request, "devices.html", devices=rows, error=error)

    async def confirm_revoke(self, request: Request) -> Response:
        return self.page(request, "revoke.html", device=request.path_params["device"])

    async def revoke(self, request: Request) -> Response:
        await self.form(request)
        if self.pairing is None:
            raise WakewardError("no pairing folder: nothing to revoke")
        await run_in_threadpool(self.pairing.revoke, request.path_params["device"])
        return RedirectResponse("/devices", status_code=303)

    # -- helpers ---------------------------------------------------------------------------

    def _back(self, form: FormData, anchor: str) -> Response:
        back = _safe_back(str(form.get("back", "")))
        return RedirectResponse(f"{back}#{anchor}", status_code=303)

    def _paired(self) -> tuple[dict[str, Any], str | None]:
        if self.pairing is None:
            return {}, None
        try:
            return {d.device_id: d for d in self.pairing.devices()}, None
        except WakewardError as e:
            return {}, str(e)

    def _device_names(self, clips: Sequence[Clip]) -> tuple[list[str], str | None]:
        paired, error = self._paired()
        return sorted(paired.keys() | {c.device for c in clips}), error

    def _device_rows(self) -> tuple[list[dict[str, Any]], str | None]:
        """Each device the store or the pairing folder knows, with its last status."""
        paired, error = self._paired()
        names = sorted(paired.keys() | {c.device for c in self.store.clips()})
        listened = {row.device: row for row in self.store.listened() if row.model == ""}
        rows = []
        for name in names:
            device = paired.get(name)
            status, status_error = stats.read_status(self.store.status_path(name))
            rows.append(
                {
                    "name": name,
                    "paired": device,
                    "status": status,
                    "status_error": status_error,
                    "fields": [(text, status.get(key)) for key, text in _STATUS_FIELDS if status],
                    "last_seen": stats.number(status.get("received")) if status else None,
                    "muted": bool(status.get("muted")) if status else None,
                    "firmware": status.get("firmware") if status else None,
                    "listened": listened.get(name),
                }
            )
        return rows, error


def _picture_of(clip: Clip) -> bytes:
    read = None if clip.deleted else picture.read_samples(clip.path)
    if read is None:
        return picture.placeholder()
    samples, rate = read
    return picture.draw(samples, rate, clip.pre_roll_ms)


def _count(text: str | None) -> int | None:
    """A count from the query string (after a purge), or None: never text shown as is."""
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _clips_link(query: str) -> str:
    return "/clips" + (f"?{query}" if query else "")


async def _wakeward_error(request: Request, exc: Exception) -> Response:
    review: Review = request.app.state.review
    return review.page(request, "error.html", status_code=400, error=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    return PlainTextResponse(str(detail), status_code=status)


def make_app(
    store: ClipStore,
    secrets: Secrets,
    pairing: Pairing | None = None,
    *,
    hosts: Hosts | None = None,
    page_size: int = MAX_SHOWN,
    poll_ms: int = POLL_MS,
    retrainer: retrain.Retrainer | None = None,
) -> Starlette:
    """The review app over `store` (and the devices of `pairing`), answering to `hosts`
    (default: this PC's loopback names); retraining with `retrainer` (none: off)."""
    review = Review(
        store, secrets, pairing, page_size=page_size, poll_ms=poll_ms, retrainer=retrainer
    )
    routes = [
        Route("/", review.home),
        Route("/clips", review.clips),
        Route("/clips/updates", review.updates),
        Route("/false-wakes", review.false_wakes),
        Route("/clips/{clip_id:int}/audio.wav", review.audio),
        Route("/clips/{clip_id:int}/picture.png", review.picture),
        Route("/clips/{clip_id:int}/label", review.label, methods=["POST"]),
        Route("/clips/{clip_id:int}/delete", review.confirm_delete, methods=["GET"]),
        Route("/clips/{clip_id:int}/delete", review.delete, methods=["POST"]),
        Route("/purge", review.purge_preview, methods=["GET"]),
        Route("/purge", review.purge, methods=["POST"]),
        Route("/retrain", review.retrain_page, methods=["GET"]),
        Route("/retrain", review.retrain_start, methods=["POST"]),
        Route("/retrain/{job}", review.retrain_job, methods=["GET"]),
        Route("/retrain/{job}/log", review.retrain_log, methods=["GET"]),
        Route("/retrain/{job}/cancel", review.retrain_cancel, methods=["POST"]),
        Route("/devices", review.devices),
        Route("/devices/{device}/revoke", review.confirm_revoke, methods=["GET"]),
        Route("/devices/{device}/revoke", review.revoke, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_HostGate, hosts=hosts or Hosts.of(LOOPBACK)),
            Middleware(_TokenGate, secrets=secrets),
        ],
        exception_handlers={WakewardError: _wakeward_error, HTTPException: _http_error},
    )
    app.state.review = review
    return app


# -- serving ------------------------------------------------------------------------------

LOOPBACK = "127.0.0.1"
DEFAULT_MODELS = Path("models")  # as `wakeward train --out models/NAME` writes them
DEFAULT_RUNS = Path("build") / "review" / "retrain"
MAX_PORT = 0xFFFF  # TCP ports are 16-bit; 0 lets the system pick one
_EVERY_INTERFACE = {"0.0.0.0": LOOPBACK, "::": "::1", "": LOOPBACK}


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (before the app exists: the cookie's name carries the port)."""
    if not 0 <= port <= MAX_PORT:
        raise WakewardError(f"--port {port}: a port is 0 to {MAX_PORT} (0: any free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise WakewardError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def url_of(host: str, sock: socket.socket, token: str) -> str:
    """The URL to open: on this PC's loopback when bound to every interface."""
    bound_host, bound_port = sock.getsockname()[:2]
    shown = _EVERY_INTERFACE.get(host, bound_host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{bound_port}/?token={token}"


def exposure_warning(sock: socket.socket) -> str | None:
    """What the owner should know when the page is reachable from the network (nothing on
    loopback: only programs on this PC, and only with the token)."""
    if ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        return None
    return (
        "WARNING: the review page is on the network, over plain HTTP: anyone who can reach "
        "this port and sees its URL (the token crosses the network unencrypted) can play, "
        "label and delete your clips; leave out --host to keep it on this PC (127.0.0.1)"
    )


def server(app: Starlette) -> uvicorn.Server:
    """uvicorn for the app, quiet (no access log: the URLs of the first request carry the
    token); `server(app).run(sockets=[sock])` serves until Ctrl-C or `should_exit`."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def serve(
    store_dir: Path | None,
    host: str,
    port: int,
    *,
    open_browser: bool,
    pairing_dir: Path | None = None,
    models_dir: Path | None = None,
    runs_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """`wakeward review`: the URL first, then serve until Ctrl-C."""
    with ClipStore(store_dir, create=False) as store, bind(host, port) as sock:
        secrets = Secrets.new(sock.getsockname()[1])
        hosts = Hosts.of(host, sock.getsockname()[0])
        retrainer = retrain.Retrainer(store, models_dir or DEFAULT_MODELS, runs_dir or DEFAULT_RUNS)
        app = make_app(store, secrets, Pairing(pairing_dir), hosts=hosts, retrainer=retrainer)
        url = url_of(host, sock, secrets.token)
        say(url)
        for line in store.recovery.lines():
            say(printable(f"clip store: {line}"))
        warning = exposure_warning(sock)
        if warning is not None:
            say(warning)
        say(f"reviewing the clip store in {store.folder}; Ctrl-C stops")
        if open_browser:
            webbrowser.open(url)
        try:
            server(app).run(sockets=[sock])
        finally:
            retrainer.close()
