"""`wakeward review`, the owner's review page: its token and CSRF rules and pages over plain
HTTP (Starlette's TestClient, fast), the command as the owner runs it (a real process), and
the page in a real browser (Debian's chromium, headless, driven by Selenium) over the clips
`wakeward demo` stores (the firmware on the sim board, heard through a real receiver) beside
test clips of known ages; the browser also takes the README's screenshot, docs/review.png
(rewritten only with WAKEWARD_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import datetime
import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from starlette.testclient import TestClient
from wakeward import demo
from wakeward.pairing import Pairing
from wakeward.review import app as review
from wakeward.review import picture, retrain
from wakeward.store import ClipStore, local_time

from tests.conftest import REPO, require_tools
from tests.host.test_store import add

DAY = 86400.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_WAIT_S = 20.0
POLL_MS = 300  # the served page's polls for new clips, quicker than the default
REBIND_NAME = "rebind.test"  # the browser resolves it to 127.0.0.1 (a DNS rebinding)
SERVER_START_S = 20.0
SCREENSHOT = REPO / "docs" / "review.png"  # the README shows it
SCREENSHOT_SIZE = (1200, 900)  # CSS pixels, at one device pixel each
UPDATE_SCREENSHOTS = "WAKEWARD_UPDATE_SCREENSHOTS"


def fill(s: ClipStore) -> dict[str, int]:
    """Four clips, oldest first: 40 and 10 days old (kitchen), 2 days old and new (hall)."""
    now = time.time()
    ids = {
        "old": add(s, 1, received_at=now - 40 * DAY).clip.id,
        "tenday": add(s, 2, received_at=now - 10 * DAY, model="hey_jarvis").clip.id,
        "twoday": add(s, 3, received_at=now - 2 * DAY, device="hall").clip.id,
        "new": add(s, 4, received_at=now, device="hall", score=191).clip.id,
    }
    s.label(ids["tenday"], "false-wake")
    return ids


@pytest.fixture
def s(tmp_path: Path) -> Iterator[ClipStore]:
    with ClipStore(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def secrets() -> review.Secrets:
    return review.Secrets.new(port=0)


@pytest.fixture
def anon(s: ClipStore, secrets: review.Secrets, tmp_path: Path) -> TestClient:
    """A client without the token (TestClient's host, testserver, is the host it serves)."""
    hosts = review.Hosts.of("testserver")
    app = review.make_app(s, secrets, Pairing(tmp_path / "pairing"), hosts=hosts)
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def client(anon: TestClient, secrets: review.Secrets) -> TestClient:
    """A client that opened the launch's URL (so it holds the cookie)."""
    first = anon.get(f"/clips?token={secrets.token}")
    assert first.status_code == 303 and first.headers["location"] == "/clips"
    return anon


def shown_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<li id="clip-(\d+)"', html)]


def post(client: TestClient, path: str, secrets: review.Secrets, **form: str) -> int:
    data = {"csrf": secrets.csrf, "back": "/clips", **form}
    return client.post(path, data=data, headers={"origin": "http://testserver"}).status_code


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- who may use it -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/clips",
        "/clips/1/audio.wav",
        "/clips/1/picture.png",
        "/static/review.css",
        "/static/review.js",
        "/clips/updates?after=0",
        "/false-wakes",
    ],
)
def test_without_the_token_everything_is_refused(anon, s, path):
    fill(s)
    answer = anon.get(path)
    assert answer.status_code == 401 and "token" in answer.text
    assert "kitchen" not in answer.text


def test_a_wrong_token_or_cookie_is_refused(anon, s, secrets):
    fill(s)
    assert anon.get("/clips?token=guess").status_code == 403
    anon.cookies.set(secrets.cookie, "guess")
    assert anon.get("/clips").status_code == 403


def test_the_token_becomes_a_cookie_and_leaves_the_address(anon, s, secrets):
    fill(s)
    first = anon.get(f"/clips?device=hall&token={secrets.token}")
    assert first.status_code == 303 and first.headers["location"] == "/clips?device=hall"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{secrets.cookie}={secrets.token}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = anon.get("/clips?device=hall")
    assert page.status_code == 200 and shown_ids(page.text) == [4, 3]
    assert "script-src 'self';" in page.headers["content-security-policy"]


def test_a_post_needs_the_csrf_token(client, s, secrets):
    ids = fill(s)
    path = f"/clips/{ids['new']}/label"
    same_site = {"origin": "http://testserver"}
    assert client.post(path, data={"label": "wake"}, headers=same_site).status_code == 403
    bad = {"label": "wake", "csrf": "guess"}
    assert client.post(path, data=bad, headers=same_site).status_code == 403
    assert s.get(ids["new"]).label is None


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"referer": "http://evil.example/page"},
        {"origin": "http://testserver:8080"},
    ],
)
def test_a_cross_site_post_is_refused_even_with_the_csrf_token(client, s, secrets, headers):
    ids = fill(s)
    form = {"label": "wake", "csrf": secrets.csrf}
    answer = client.post(f"/clips/{ids['new']}/delete", data=form, headers=headers)
    assert answer.status_code == 403
    answer = client.post(f"/clips/{ids['new']}/label", data=form, headers=headers)
    assert answer.status_code == 403
    assert s.get(ids["new"]).label is None and not s.get(ids["new"]).deleted


def test_a_get_changes_nothing(client, s):
    ids = fill(s)
    assert client.get(f"/clips/{ids['new']}/label?label=wake").status_code == 405
    confirm = client.get(f"/clips/{ids['new']}/delete")
    assert confirm.status_code == 200 and "Delete clip" in confirm.text
    assert s.get(ids["new"]).label is None and not s.get(ids["new"]).deleted


# -- the clips page -------------------------------------------------------------------------


def test_the_clips_page_lists_newest_first_with_what_the_owner_needs(client, s):
    ids = fill(s)
    page = client.get("/clips").text
    assert shown_ids(page) == [ids["new"], ids["twoday"], ids["tenday"], ids["old"]]
    assert "p 0.75" in page  # score 191 of 255
    assert "ended by end_of_speech" in page and "16.0 kB" in page
    assert f'src="/clips/{ids["new"]}/audio.wav"' in page
    assert f'src="/clips/{ids["new"]}/picture.png"' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("device=kitchen", ["tenday", "old"]),
        ("model=hey_jarvis", ["tenday"]),
        ("label=false-wake", ["tenday"]),
        ("label=none", ["new", "twoday", "old"]),
        ("since={five_days_ago}", ["new", "twoday"]),
        ("until={five_days_ago}", ["tenday", "old"]),
    ],
)
def test_the_filters(client, s, query, expected):
    ids = fill(s)
    five_days_ago = time.strftime("%Y-%m-%d", time.localtime(time.time() - 5 * DAY))
    page = client.get("/clips?" + query.format(five_days_ago=five_days_ago)).text
    assert shown_ids(page) == [ids[name] for name in expected]


def test_a_bad_filter_is_said_not_a_500(client, s):
    fill(s)
    answer = client.get("/clips?label=maybe")
    assert answer.status_code == 400 and "wakeward: label &#39;maybe&#39;" in answer.text
    answer = client.get("/clips?since=yesterday-ish")
    assert answer.status_code == 400 and "from date" in answer.text


def test_strings_from_devices_are_escaped(client, s):
    add(s, 9, device="<b>dev</b>", model="<script>alert(1)</script>", end_reason='"><i>x')
    page = client.get("/clips").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>dev</b>" not in page and '"><i>x' not in page


def test_label_and_clear_it(client, s, secrets):
    ids = fill(s)
    path = f"/clips/{ids['new']}/label"
    assert post(client, path, secrets, label="false-wake") == 303
    assert s.get(ids["new"]).label == "false-wake"
    assert post(client, path, secrets, label="clear") == 303
    assert s.get(ids["new"]).label is None
    assert post(client, path, secrets, label="maybe") == 400


def test_a_post_returns_to_its_page_and_nowhere_else(client, s, secrets):
    ids = fill(s)
    form = {"csrf": secrets.csrf, "label": "wake", "back": "/clips?device=hall"}
    answer = client.post(f"/clips/{ids['new']}/label", data=form)
    assert answer.headers["location"] == f"/clips?device=hall#clip-{ids['new']}"
    for elsewhere in ("https://evil.example/", "//evil.example/clips", "/static/x"):
        form["back"] = elsewhere
        answer = client.post(f"/clips/{ids['new']}/label", data=form)
        assert answer.headers["location"] == f"/clips#clip-{ids['new']}"


def test_delete_keeps_the_record_and_removes_the_wav(client, s, secrets):
    ids = fill(s)
    wav = s.get(ids["new"]).path
    assert post(client, f"/clips/{ids['new']}/delete", secrets) == 303
    assert not wav.exists() and s.get(ids["new"]).deleted_by == "delete"
    page = client.get("/clips").text
    assert shown_ids(page)[0] == ids["new"]
    row = page[page.index(f'<li id="clip-{ids["new"]}"') :]
    assert 'class="clip deleted"' in row[:80] and "(delete); this record stays" in row
    assert client.get(f"/clips/{ids['new']}/audio.wav").status_code == 404
    again = post(client, f"/clips/{ids['new']}/delete", secrets)
    assert again == 400  # already deleted: said, not a 500


def test_the_purge_preview_lists_what_would_go_and_purge_removes_just_those(client, s, secrets):
    ids = fill(s)
    preview = client.get("/purge?older_than=5d").text
    listed = [int(x) for x in re.findall(r'<li data-clip-id="(\d+)"', preview)]
    assert listed == [ids["tenday"], ids["old"]]
    assert all(s.get(i).path.exists() for i in listed)  # a preview changes nothing
    now = preview.split('name="now" value="')[1].split('"')[0]
    answer = client.post("/purge", data={"csrf": secrets.csrf, "older_than": "5d", "now": now})
    assert answer.status_code == 303 and answer.headers["location"] == "/clips?purged=2"
    assert "purged 2 clip(s)" in client.get("/clips?purged=2").text
    assert "their records stay below" not in client.get("/clips?purged=<b>many</b>").text
    assert [c.id for c in s.clips(include_deleted=False)] == [ids["twoday"], ids["new"]]
    nothing = client.get("/purge?older_than=5d").text
    assert "nothing to purge" in nothing
    assert client.get("/purge?older_than=soon").status_code == 400


def test_a_purge_from_the_future_is_refused(client, s, secrets):
    fill(s)
    form = {"csrf": secrets.csrf, "older_than": "1s", "now": repr(time.time() + DAY)}
    assert client.post("/purge", data=form).status_code == 400
    assert len(s.clips(include_deleted=False)) == len(s.clips())


# -- pictures and audio ---------------------------------------------------------------------


def test_the_picture_is_a_png_of_the_right_size(client, s):
    ids = fill(s)
    answer = client.get(f"/clips/{ids['new']}/picture.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert png_size(answer.content) == (picture.WIDTH, picture.HEIGHT)


def test_a_missing_wav_gives_a_placeholder_not_a_500(client, s):
    ids = fill(s)
    s.get(ids["new"]).path.unlink()
    answer = client.get(f"/clips/{ids['new']}/picture.png")
    assert answer.status_code == 200 and answer.content == picture.placeholder()
    assert png_size(answer.content) == (picture.WIDTH, picture.HEIGHT)
    assert client.get(f"/clips/{ids['new']}/audio.wav").status_code == 404
    assert client.get("/clips/999/picture.png").status_code == 404


def test_the_detection_moment_is_marked(s):
    samples = np.zeros(16000, dtype=np.float32)  # 1 s; pre-roll 250 ms: x = WIDTH / 4
    image = picture.draw(samples, 16000, 250)
    raw = zlib.decompress(image[image.index(b"IDAT") + 4 :][:-16])
    stride = 1 + 3 * picture.WIDTH
    row = raw[stride * 10 + 1 : stride * 11]
    x = picture.WIDTH // 4
    assert tuple(row[3 * x - 3 : 3 * x]) == picture.DETECTION_COLOUR


def test_the_audio_streams_the_wav(client, s):
    ids = fill(s)
    answer = client.get(f"/clips/{ids['new']}/audio.wav")
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    assert answer.content == s.get(ids["new"]).path.read_bytes()
    part = client.get(f"/clips/{ids['new']}/audio.wav", headers={"range": "bytes=0-43"})
    assert part.status_code == 206 and part.content[:4] == b"RIFF"


# -- devices --------------------------------------------------------------------------------


def test_devices_show_their_last_status(client, s, tmp_path):
    fill(s)
    status = (
        '{"device": "hall", "clips_sent": 7, "clips_acked": 6, "queued": 1, '
        '"clips_dropped": 0, "audio_bytes": 123456, "muted": 1, "received": 1700000000.0}'
    )
    s.write_status("hall", status)
    page = client.get("/devices").text
    assert "clips sent 7; acknowledged 6; queued 1; dropped 0; audio bytes sent 123456" in page
    assert "muted" in page and "no status received yet" in page  # kitchen: none
    assert '<td class="listened">-</td>' in page  # no listened time counted yet
    s.add_listened("hall", ["alexa"], 90 * 60_000, 2 * 3_600_000, 1_700_000_000.0)
    since = s.listened("hall")[0].since
    assert (
        f'<td class="listened">1.5 h since {local_time(since)}</td>' in client.get("/devices").text
    )


def test_revoke_a_paired_device_after_confirming(client, s, secrets, tmp_path):
    pairing = Pairing(tmp_path / "pairing")
    pairing.pair("hall")
    assert "revoke…" in client.get("/devices").text
    assert "Revoke hall?" in client.get("/devices/hall/revoke").text
    assert pairing.devices()[0].active  # asking changed nothing
    assert post(client, "/devices/hall/revoke", secrets) == 303
    assert not pairing.devices()[0].active


# -- the command ----------------------------------------------------------------------------


def test_bind_refuses_a_bad_port():
    from wakeward.errors import WakewardError

    with pytest.raises(WakewardError, match="a port is 0 to 65535"):
        review.bind("127.0.0.1", 70000)


def start_review(store_dir: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wakeward", "review", "--store", str(store_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip()]
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=SERVER_START_S)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_command_prints_its_url_first_and_serves_it(s):
    fill(s)
    proc, lines = start_review(s.folder, "--no-browser")
    try:
        url = urlsplit(lines[0])
        assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.port
        assert url.query.startswith("token=") and len(url.query) > len("token=") + 30
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{url.port}/clips")  # noqa: S310
        assert refused.value.code == 401
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(lines[0]) as page:
            assert b'<li id="clip-4"' in page.read()
        rebound = urllib.request.Request(lines[0], headers={"host": f"evil.example:{url.port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(rebound)
        assert refused.value.code == 400
    finally:
        assert stop(proc) == 130  # Ctrl-C: as every wakeward command


def test_the_command_warns_when_on_every_interface(s):
    proc, lines = start_review(s.folder, "--no-browser", "--host", "0.0.0.0")
    try:
        assert lines[0].startswith("http://127.0.0.1:")
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("WARNING: the review page is on the network")
    finally:
        stop(proc)


def test_the_command_without_a_store_says_so(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "wakeward", "review", "--store", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=SERVER_START_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("wakeward: no clip store in")


# -- in a real browser ----------------------------------------------------------------------


def _browser_missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} missing: install the Debian package {package} (make sysdeps)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium missing: pip install -c constraints.txt -e '.[dev]'"
    return None


class Served:
    """The review app served by uvicorn in a thread, over a store: a copy of `demo`'s when
    given (its clips' ids in demo_ids, oldest first), then fill()'s clips unless told."""

    def __init__(
        self, folder: Path, pairing: Path, *, filled: bool = True, demo: Path | None = None
    ) -> None:
        if demo is not None:
            shutil.copytree(demo, folder)
        self.store = ClipStore(folder)
        self.demo_ids = [c.id for c in self.store.clips()]
        self.ids = fill(self.store) if filled else {}
        self.sock = review.bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.secrets = review.Secrets.new(self.port)
        self.url = review.url_of("127.0.0.1", self.sock, self.secrets.token)
        self.base = f"http://127.0.0.1:{self.port}"
        self.models = folder.parent / "models"  # what it offers to retrain
        self.retrainer = retrain.Retrainer(self.store, self.models, folder.parent / "runs")
        app = review.make_app(
            self.store, self.secrets, Pairing(pairing), poll_ms=POLL_MS, retrainer=self.retrainer
        )
        self.server = review.server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            self.close()
            pytest.fail(f"the review server did not start in {SERVER_START_S} s")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join()
        self.retrainer.close()
        self.sock.close()
        self.store.close()


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """The clip store `wakeward demo` leaves (as build/demo/store): the firmware on the sim
    board hears the demo's recording and sends its two clips to a receiver on loopback."""
    require_tools("espeak-ng", "sox")
    workdir = tmp_path_factory.mktemp("demo")
    assert demo.run(workdir) == 0
    store_dir = workdir / "store"
    with ClipStore(store_dir, create=False) as stored:
        assert [(c.device, c.model) for c in stored.clips()] == [("sim", "alexa")] * 2
    return store_dir


@pytest.fixture(scope="module")
def served(request, tmp_path_factory) -> Iterator[Served]:
    """The page over the demo's clips, then fill()'s four (of known ages) after them."""
    missing = _browser_missing()
    if missing is not None:
        pytest.skip(missing)
    demo_store = request.getfixturevalue("demo_store")  # after the browser's check
    folder = tmp_path_factory.mktemp("review")
    running = Served(folder / "store", folder / "pairing", demo=demo_store)
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser(served: Served):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root (containers)
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1200,900",
        f"--host-resolver-rules=MAP {REBIND_NAME} 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(BROWSER_WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, served: Served):
    """The browser on the clips page, having opened the launch's URL."""
    browser.get(served.url)
    return browser


def wait_for(browser, condition, what: str):
    """Wait until condition(browser) is true (a form's POST and its redirect take a moment)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        browser, BROWSER_WAIT_S, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition, message=what)


def _clip_ids(browser) -> list[int]:
    from selenium.webdriver.common.by import By

    return [
        int(li.get_attribute("data-clip-id"))
        for li in browser.find_elements(By.CSS_SELECTOR, "li.clip")
    ]


def test_browser_without_the_token_is_refused(browser, served: Served):
    browser.delete_all_cookies()
    browser.get(served.base + "/clips")
    assert "401" in browser.page_source and "kitchen" not in browser.page_source


def _pictures(browser, clip_ids: list[int]) -> list[object]:
    """Each clip's picture, loaded (lazy ones out of view too): its natural width, or
    'error'; and each clip's player's source."""
    return browser.execute_async_script(
        "const [ids, done] = [arguments[0], arguments[arguments.length - 1]];"
        "const rows = ids.map(id => document.getElementById('clip-' + id));"
        "Promise.all(rows.map(row => new Promise(ok => {"
        "  const img = row.querySelector('img.picture');"
        "  if (!img) { ok('none'); return; }"
        "  img.loading = 'eager';"
        "  if (img.complete && img.naturalWidth) { ok(img.naturalWidth); return; }"
        "  img.addEventListener('load', () => ok(img.naturalWidth));"
        "  img.addEventListener('error', () => ok('error'));"
        "}))).then(widths => done([widths, rows.map(row => {"
        "  const a = row.querySelector('audio'); return a && a.getAttribute('src'); })]));",
        clip_ids,
    )


def test_browser_lists_the_clips_newest_first(page, served: Served):
    """The demo's two clips (as the sim board sent them), then fill()'s, newest first."""
    from selenium.webdriver.common.by import By

    assert page.current_url == served.base + "/clips"  # the token left the address bar
    ids = served.ids
    newest_first = [ids["new"], ids["twoday"], ids["tenday"], ids["old"], *served.demo_ids[::-1]]
    assert len(served.demo_ids) == 2 and _clip_ids(page)[-6:] == newest_first
    for clip in map(served.store.get, served.demo_ids):
        meta = " ".join(page.find_element(By.CSS_SELECTOR, f"#clip-{clip.id} .meta").text.split())
        p = review.probability(clip.score)
        assert f" sim alexa p {p} {clip.duration_s:.2f} s ended by end_of_speech" in meta, meta
    widths, sources = _pictures(page, newest_first)
    assert widths == [picture.WIDTH] * len(newest_first)
    assert sources == [f"/clips/{clip}/audio.wav" for clip in newest_first]


def test_browser_plays_a_clip(page, served: Served):
    """One of the demo's clips: the player loads its WAV and knows how long it is."""
    clip = served.store.get(served.demo_ids[-1])
    duration = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"const a = document.querySelector('#clip-{clip.id} audio');"
        "a.addEventListener('loadedmetadata', () => done(a.duration));"
        "a.addEventListener('error', () => done('error ' + (a.error && a.error.code)));"
        "a.play().catch(e => done('play: ' + e));"
    )
    assert isinstance(duration, float) and duration == pytest.approx(clip.duration_s, abs=0.01)


def test_browser_labels_a_clip(page, served: Served):
    """One of the demo's clips (it did hear "Alexa"): labelled wake."""
    from selenium.webdriver.common.by import By

    clip = served.demo_ids[0]
    page.find_element(By.CSS_SELECTOR, f"#clip-{clip} button[value='wake']").click()
    wait_for(
        page,
        lambda d: d.find_element(By.CSS_SELECTOR, f"#clip-{clip} .label").text == "wake",
        "the clip shown labelled wake",
    )
    assert served.store.get(clip).label == "wake"
    assert "current" in page.find_element(
        By.CSS_SELECTOR, f"#clip-{clip} button[value='wake']"
    ).get_attribute("class")


def test_browser_deletes_a_clip_after_confirming(page, served: Served):
    """One of the demo's clips: its WAV goes, its row stays, shown deleted with the audit."""
    from selenium.webdriver.common.by import By

    clip = served.store.get(served.demo_ids[-1])
    page.find_element(By.CSS_SELECTOR, f"#clip-{clip.id} a.delete").click()
    confirm = wait_for(page, lambda d: d.find_element(By.ID, "confirm-delete"), "the confirm page")
    assert f"Delete clip {clip.id}" in page.page_source and clip.path.exists()
    confirm.click()
    wait_for(
        page,
        lambda d: "deleted" in d.find_element(By.ID, f"clip-{clip.id}").get_attribute("class"),
        "the clip shown as deleted",
    )
    row = page.find_element(By.ID, f"clip-{clip.id}")
    assert "(delete); this record stays" in row.find_element(By.CSS_SELECTOR, ".audit").text
    assert not row.find_elements(By.CSS_SELECTOR, "audio, img.picture, a.delete")
    assert not clip.path.exists() and served.store.get(clip.id).deleted_by == "delete"


def test_browser_purge_preview_lists_the_right_clips(page, served: Served):
    from selenium.webdriver.common.by import By

    field = page.find_element(By.NAME, "older_than")
    field.clear()
    field.send_keys("5d")
    page.find_element(By.CSS_SELECTOR, "form.purge button").click()
    wait_for(page, lambda d: "/purge?" in d.current_url, "the purge preview")
    listed = [
        int(li.get_attribute("data-clip-id"))
        for li in page.find_elements(By.CSS_SELECTOR, "ul.purge-preview li")
    ]
    assert listed == [served.ids["tenday"], served.ids["old"]]  # not the demo's: today's
    assert all(served.store.get(i).path.exists() for i in listed)


def test_browser_screenshot_of_the_demos_clips(browser, demo_store, tmp_path):
    """The README's picture, docs/review.png: the clips page over the demo's store alone (its
    first clip labelled wake), in a 1200x900 viewport at one device pixel per CSS pixel.
    Each run takes the screenshot into tmp_path, after seeing the page it shows (the demo's
    two clips, their pictures loaded, their players), and checks that the committed picture
    has its size. The page shows the times the demo ran, so the committed file is rewritten
    only when asked: WAKEWARD_UPDATE_SCREENSHOTS=1 (then commit docs/review.png)."""
    from selenium.webdriver.common.by import By

    shot = Served(tmp_path / "store", tmp_path / "pairing", filled=False, demo=demo_store)
    width, height = SCREENSHOT_SIZE
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    try:
        shot.store.label(shot.demo_ids[0], "wake")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.get(shot.url)
        newest_first = shot.demo_ids[::-1]
        assert _clip_ids(browser) == newest_first
        widths, sources = _pictures(browser, newest_first)
        assert widths == [picture.WIDTH] * 2
        assert sources == [f"/clips/{clip}/audio.wav" for clip in newest_first]
        assert browser.find_element(By.CSS_SELECTOR, "p.count").text.startswith("2 of 2 clips")
        taken = tmp_path / "review.png"
        assert browser.save_screenshot(str(taken))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        shot.close()
    assert png_size(taken.read_bytes()) == SCREENSHOT_SIZE
    if os.environ.get(UPDATE_SCREENSHOTS) == "1":
        shutil.copyfile(taken, SCREENSHOT)
    assert SCREENSHOT.is_file(), f"{SCREENSHOT} missing: run this test with {UPDATE_SCREENSHOTS}=1"
    assert png_size(SCREENSHOT.read_bytes()) == SCREENSHOT_SIZE


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No log lines: the test says what went wrong."""


def test_browser_cross_site_post_is_refused(browser, served: Served, tmp_path):
    """A page on another origin (another port) posts to the review page, even with the
    right CSRF token: refused, nothing changes."""
    from selenium.webdriver.common.by import By

    browser.get(served.url)  # the browser holds the cookie
    clip = served.ids["old"]
    (tmp_path / "evil.html").write_text(
        f'<form method="post" action="{served.base}/clips/{clip}/label">'
        f'<input type="hidden" name="csrf" value="{served.secrets.csrf}">'
        '<button id="go" name="label" value="wake">win a prize</button></form>'
    )
    handler = functools.partial(_QuietFiles, directory=str(tmp_path))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=evil.serve_forever)
    thread.start()
    try:
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        browser.find_element(By.ID, "go").click()
        wait_for(browser, lambda d: "/label" in d.current_url, "the cross-site post's answer")
        wait_for(browser, lambda d: "403: refused" in d.page_source, "the refusal")
    finally:
        evil.shutdown()
        thread.join()
        evil.server_close()
    assert served.store.get(clip).label is None


# -- the Host header (DNS rebinding) --------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "localhost.evil.example:80",
        "testserver@evil.example",
        "testserver/x",
        "",
    ],
)
def test_a_request_naming_another_host_is_refused(client, s, host):
    fill(s)
    answer = client.get("/clips", headers={"host": host})
    assert answer.status_code == 400 and "DNS rebinding" in answer.text
    assert "kitchen" not in answer.text
    answer = client.get(f"/clips?token={'x' * 10}", headers={"host": host})
    assert answer.status_code == 400  # before the token is looked at


@pytest.mark.parametrize("host", ["testserver", "localhost:8123", "127.0.0.1", "[::1]:8123"])
def test_the_bound_host_and_loopback_names_are_answered(client, s, host):
    fill(s)
    assert client.get("/clips", headers={"host": host}).status_code == 200


def test_which_hosts_a_launch_answers_to():
    loopback = review.Hosts.of("127.0.0.1")
    assert loopback.allows("localhost:1") and loopback.allows("127.0.0.1:8000")
    assert not loopback.allows("192.168.1.7:8000") and not loopback.allows("evil.example")
    named = review.Hosts.of("mypc.lan", "192.168.1.7")
    assert named.allows("MyPC.lan:8000") and named.allows("192.168.1.7:8000")
    assert not named.allows("192.168.1.8:8000")
    every = review.Hosts.of("0.0.0.0")
    assert every.allows("192.168.1.8:8000") and every.allows("[fe80::1]:80")
    assert not every.allows("evil.example:8000")


# -- paging ---------------------------------------------------------------------------------


def _link(html: str, cls: str) -> str | None:
    m = re.search(rf'<a class="{cls}" href="([^"]+)"', html)
    return m and m.group(1).replace("&amp;", "&")


def quick_adds(s: ClipStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand adds in seconds: no fsync (durability is not what such a test is about)."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    s._db.execute("PRAGMA synchronous=OFF")


def test_more_than_a_page_of_clips_pages_with_next_and_prev(client, s, monkeypatch):
    quick_adds(s, monkeypatch)
    ids = [add(s, n, audio=struct.pack("<2h", n, -n)).clip.id for n in range(1, 1002)]
    newest_first = ids[::-1]
    first = client.get("/clips").text
    assert shown_ids(first) == newest_first[:500]
    assert "1001</span> clips match; shown: 1 to" in first
    assert _link(first, "newer") is None and _link(first, "newest") is None
    second_url = _link(first, "older")
    assert second_url == f"/clips?before={newest_first[499]}"
    second = client.get(second_url).text
    assert shown_ids(second) == newest_first[500:1000]
    assert "shown: 501 to" in second
    # new clips go live onto the newest page only; an older page says they came
    assert 'data-live="1"' in first and 'data-live="0"' in second
    third_url = _link(second, "older")
    third = client.get(third_url).text
    assert shown_ids(third) == newest_first[1000:] == [ids[0]]
    assert _link(third, "older") is None
    back = client.get(_link(third, "newer")).text
    assert shown_ids(back) == newest_first[500:1000]
    back = client.get(_link(back, "newer")).text
    assert shown_ids(back) == newest_first[:500]
    assert _link(second, "newest") == "/clips"


def test_paging_keeps_the_filters(s, secrets, tmp_path):
    for n in range(1, 8):
        add(s, n, device="hall" if n % 2 else "kitchen")
    app = review.make_app(s, secrets, hosts=review.Hosts.of("testserver"), page_size=2)
    client = TestClient(app, follow_redirects=False)
    client.get(f"/?token={secrets.token}")
    page = client.get("/clips?device=hall").text
    assert shown_ids(page) == [7, 5]
    older = _link(page, "older")
    assert older == "/clips?device=hall&before=5"
    page = client.get(older).text
    assert shown_ids(page) == [3, 1] and _link(page, "older") is None
    assert _link(page, "newer") == "/clips?device=hall&after=3"
    assert shown_ids(client.get("/clips?device=hall&after=3").text) == [7, 5]
    assert client.get("/clips?before=soon").status_code == 400


# -- new clips while the page is open --------------------------------------------------------


def test_updates_give_the_new_clips_rows_matching_the_filters(client, s):
    ids = fill(s)
    page = client.get("/clips?device=hall").text
    newest = int(re.search(r'data-newest="(\d+)"', page).group(1))
    assert newest == ids["new"] and 'data-query="device=hall"' in page
    nothing = client.get(f"/clips/updates?device=hall&after={newest}").json()
    assert nothing == {"newest": newest, "added": 0, "rows": ""}
    kitchen = add(s, 20).clip.id
    hall = [add(s, n, device="hall").clip.id for n in (21, 22)]
    update = client.get(f"/clips/updates?device=hall&after={newest}").json()
    assert update["newest"] == hall[-1] and update["added"] == 2
    assert shown_ids(update["rows"]) == hall[::-1] and kitchen not in shown_ids(update["rows"])
    assert update["matched"] == 4 and update["total"] == 7
    assert 'name="back" value="/clips?device=hall"' in update["rows"]
    assert client.get("/clips/updates?after=-1").status_code == 400


WRITER = """
import sys, time
from dataclasses import dataclass
from pathlib import Path
from wakeward.store import ClipStore
folder, count = Path(sys.argv[1]), int(sys.argv[2])
with ClipStore(folder) as s:
    for n in range(1, count + 1):
        pcm = n.to_bytes(4, "little") * 800
        s.add(pcm, device="kitchen", device_clip_id=n, model="alexa", score=200)
        time.sleep(0.005)
print("wrote", count)
"""


def test_the_page_follows_a_writer_without_locking_errors(tmp_path):
    """`listen` adding clips (another process) while the page and its polls are asked for
    again and again: every answer a page, every clip shown, once."""
    count, readers = 150, 4
    served = Served(tmp_path / "store", tmp_path / "pairing", filled=False)
    cookie = {"cookie": f"{served.secrets.cookie}={served.secrets.token}"}
    failures: list[str] = []
    seen: list[int] = []
    done = threading.Event()

    def get(path: str) -> bytes:
        request = urllib.request.Request(served.base + path, headers=cookie)
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.read()

    def reader() -> None:
        while not done.is_set():
            try:
                body = get("/clips").decode()
                if '<ul class="clips"' not in body or "error" in body.lower():
                    failures.append(body[:300])
            except Exception as e:  # noqa: BLE001 (a test: every failure is recorded)
                failures.append(repr(e))

    def poller() -> None:
        after = 0
        while True:
            finished = done.is_set()
            try:
                update = json.loads(get(f"/clips/updates?after={after}"))
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))
                return
            seen.extend(shown_ids(update["rows"])[::-1])
            after = update["newest"]
            if finished and after >= count:
                return
            time.sleep(0.02)

    def labeller() -> None:
        """The owner labelling on the page meanwhile: the review page writes too."""
        form = f"csrf={served.secrets.csrf}&label=unsure&back=/clips".encode()
        headers = {**cookie, "origin": served.base}
        n = 1
        while not done.is_set():
            if n > max(seen, default=0):
                time.sleep(0.02)
                continue
            request = urllib.request.Request(
                f"{served.base}/clips/{n}/label", data=form, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (redirects)
                    pass
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))
            labelled.append(n)
            n += 1

    labelled: list[int] = []
    threads = [threading.Thread(target=reader) for _ in range(readers)]
    threads += [threading.Thread(target=poller), threading.Thread(target=labeller)]
    try:
        for t in threads:
            t.start()
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(served.store.folder), str(count)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        page = get("/clips").decode()
        labels = {served.store.get(i).label for i in labelled}
        served.close()
    assert writer.returncode == 0 and writer.stderr == "", writer.stderr
    assert failures == []
    assert seen == list(range(1, count + 1))  # every clip, once, in order
    assert shown_ids(page) == list(range(count, 0, -1))
    # how many labels land while the writer runs depends on the machine's speed (10 on a quiet
    # 2-core run, more elsewhere): some must, all of them kept
    assert len(labelled) >= 5 and labels == {"unsure"}


# -- false wakes over time ------------------------------------------------------------------


def local_noon(days_ago: int) -> tuple[str, float]:
    """A local day `days_ago` before today (YYYY-MM-DD) and its noon as Unix time."""
    day = datetime.date.today() - datetime.timedelta(days=days_ago)
    return day.isoformat(), datetime.datetime.combine(day, datetime.time(12)).timestamp()


def bars(html: str) -> dict[tuple[str, str], tuple[int, float]]:
    """The chart's bars: (day, model) -> (count, height)."""
    found = re.findall(
        r'<rect class="bar" data-day="([^"]+)" data-model="([^"]+)" data-count="(\d+)" '
        r'x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"',
        html,
    )
    return {(day, model): (int(n), float(h)) for day, model, n, h in found}


def test_the_chart_counts_false_wakes_per_day_per_model(client, s):
    yesterday, at_1 = local_noon(1)
    three_ago, at_3 = local_noon(3)
    _, at_40 = local_noon(40)
    labelled = [
        (1, at_1, "alexa", "false-wake"),
        (2, at_1 + 60, "alexa", "false-wake"),
        (3, at_1 + 120, "hey_jarvis", "false-wake"),
        (4, at_1 + 180, "alexa", "wake"),
        (5, at_1 + 240, "alexa", "unsure"),
        (6, at_1 + 300, "alexa", None),
        (7, at_3, "alexa", "false-wake"),
        (8, at_40, "alexa", "false-wake"),
    ]
    for n, at, model, label in labelled:
        clip = add(s, n, received_at=at, model=model).clip
        if label is not None:
            s.label(clip.id, label)
    s.delete(7)  # its audio gone, its label stays: still a false wake on its day
    page = client.get("/false-wakes").text
    drawn = bars(page)
    assert {key: n for key, (n, _) in drawn.items()} == {
        (yesterday, "alexa"): 2,
        (yesterday, "hey_jarvis"): 1,
        (three_ago, "alexa"): 1,
    }
    assert drawn[(yesterday, "alexa")][1] == pytest.approx(2 * drawn[(three_ago, "alexa")][1])
    assert "4 clip(s) labelled false wake in the last 30 days" in page
    row = re.search(rf'<tr data-day="{yesterday}">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td[^>]*>(\d+)</td>", row) == ["2", "1", "3"]  # alexa, hey_jarvis, all
    longer = bars(client.get("/false-wakes?days=60").text)
    assert sum(n for n, _ in longer.values()) == 5
    assert client.get("/false-wakes?days=3").status_code == 400
    assert client.get("/false-wakes?days=soon").status_code == 400


def status(s: ClipStore, device: str, uptime_h: float, received: float, muted: int = 0) -> None:
    record = {
        "device": device,
        "uptime_ms": int(uptime_h * 3600 * 1000),
        "clips_sent": 1,
        "clips_acked": 1,
        "clips_dropped": 0,
        "queued": 0,
        "muted": muted,
        "audio_bytes": 1,
        "received": received,
    }
    s.write_status(device, json.dumps(record))


def add_labelled(s: ClipStore, clips: list[tuple[str, str, float, str | None]]) -> None:
    """Clips 1, 2, ... as (device, model, received at, label or None)."""
    for n, (device, model, at, label) in enumerate(clips, 1):
        clip = add(s, n, device=device, model=model, received_at=at).clip
        if label is not None:
            s.label(clip.id, label)


def exposure_rows(html: str) -> dict[tuple[str, str], tuple[int, str, str]]:
    """The FA/h table: (device, model) -> (false wakes, hours, FA/h as data)."""
    found = re.findall(
        r'<tr data-device="([^"]*)" data-model="([^"]*)" data-false-wakes="(\d+)" '
        r'data-hours="([^"]*)" data-fa-per-hour="([^"]*)"',
        html,
    )
    return {(d, m): (int(n), h, fa) for d, m, n, h, fa in found}


def test_the_fa_per_hour_is_false_wakes_over_the_hours_since_boot(client, s):
    now = time.time()
    # kitchen: up 10 h at its last status (1 min ago); hall: up 4 h; attic: no status
    status(s, "kitchen", 10, now - 60)
    status(s, "hall", 4, now - 60, muted=1)
    clips = [
        ("kitchen", "alexa", now - 2 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 3 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 4 * 3600, None),
        ("kitchen", "alexa", now - 5 * 3600, "wake"),
        ("kitchen", "hey_jarvis", now - 6 * 3600, "unsure"),
        ("kitchen", "alexa", now - 11 * 3600, "false-wake"),  # before it booted
        ("hall", "hey_jarvis", now - 3600, "false-wake"),
        ("attic", "alexa", now - 3600, "false-wake"),
    ]
    add_labelled(s, clips)
    page = client.get("/false-wakes").text
    rows = exposure_rows(page)
    assert rows == {
        ("hall", "hey_jarvis"): (1, "4.0000", "0.2500"),
        ("kitchen", "alexa"): (2, "10.0000", "0.2000"),
        ("kitchen", "hey_jarvis"): (0, "10.0000", "0.0000"),
    }
    assert '<strong id="overall-fa-per-hour">0.21 false wakes per hour</strong>' in page  # 3/14
    assert "attic: no FA/h: no status received yet." in page
    assert "muted time included" in page and "read it as a floor" in page
    assert "(muted then)" in page


def test_a_device_with_no_clips_since_boot_has_a_zero_rate(client, s):
    now = time.time()
    status(s, "kitchen", 2, now)
    add(s, 1, received_at=now - 5 * 3600)  # before it booted
    s.label(1, "false-wake")
    rows = exposure_rows(client.get("/false-wakes").text)
    assert rows == {("kitchen", ""): (0, "2.0000", "0.0000")}


def test_the_fa_per_hour_is_false_wakes_over_the_hours_listened(client, s):
    now = time.time()
    hour_ms = 3_600_000
    models = ["alexa", "hey_jarvis"]
    # kitchen (its statuses carry the time listened): booted 10 h ago; at its first status
    # (6 h ago) up 4 h, 1 h listened; at its last (1 min ago) 4 h listened: 4 h from its boot
    s.add_listened("kitchen", models, 1 * hour_ms, 4 * hour_ms, now - 6 * 3600)
    s.add_listened("kitchen", models, 4 * hour_ms, 10 * hour_ms - 60_000, now - 60)
    status(s, "kitchen", 10, now - 60)  # its status file, as the receiver writes it too
    # hall: only an older firmware's status (up 2 h, no time listened): the floor
    status(s, "hall", 2, now - 60)
    clips = [
        ("kitchen", "alexa", now - 2 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 3 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 9 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 4 * 3600, None),
        ("kitchen", "alexa", now - 5 * 3600, "wake"),
        ("kitchen", "hey_jarvis", now - 6 * 3600, "false-wake"),
        ("kitchen", "alexa", now - 11 * 3600, "false-wake"),  # before its count started
        ("hall", "hey_jarvis", now - 3600, "false-wake"),
    ]
    add_labelled(s, clips)
    page = client.get("/false-wakes").text
    assert exposure_rows(page) == {
        ("kitchen", "alexa"): (3, "4.0000", "0.7500"),
        ("kitchen", "hey_jarvis"): (1, "4.0000", "0.2500"),
        ("hall", "hey_jarvis"): (1, "2.0000", "0.5000"),
    }
    measured = re.findall(r'data-device="(\w+)"[^>]*data-measured="(\w+)"', page)
    assert set(measured) == {("kitchen", "listened"), ("hall", "floor")}
    # 5 false wakes over 4 + 2 device-hours; counted since kitchen's boot, 10 h ago
    assert '<strong id="overall-fa-per-hour">0.83 false wakes per hour</strong>' in page
    assert '<span id="overall-hours">6.0</span> device-hours' in page
    assert f'<span id="overall-since">{local_time(now - 10 * 3600)}</span>' in page
    assert "says how long it has listened, not muted" in page  # what the figure rests on
    assert "muted time included" in page and "read it as a floor" in page  # hall's caveat


def test_with_every_device_counting_its_time_listened_there_is_no_floor(client, s):
    now = time.time()
    s.add_listened("kitchen", ["alexa"], 30 * 60_000, 3 * 3_600_000, now - 60)  # 30 min
    add(s, 1, received_at=now - 600)  # kitchen, alexa
    s.label(1, "false-wake")
    add(s, 2, received_at=now - 4 * 3600)  # before it booted (3 h ago)
    s.label(2, "false-wake")
    page = client.get("/false-wakes").text
    assert exposure_rows(page) == {("kitchen", "alexa"): (1, "0.5000", "2.0000")}
    assert '<strong id="overall-fa-per-hour">2.00 false wakes per hour</strong>' in page
    assert '<span id="overall-hours">0.5</span> listening hours' in page
    assert f'<span id="overall-since">{local_time(now - 60 - 3 * 3600)}</span>' in page
    assert "read it as a floor" not in page and "muted time included" not in page


# -- in a real browser: new clips, rebinding, the chart -------------------------------------


def test_browser_shows_new_clips_without_a_reload(page, served: Served):
    from selenium.webdriver.common.by import By

    page.execute_script("window.notReloaded = true;")
    with ClipStore(served.store.folder) as listen:  # as `wakeward listen` would: its own
        clip = add(listen, 77, device="porch").clip
    wait_for(page, lambda d: d.find_elements(By.ID, f"clip-{clip.id}"), "the new clip shown")
    assert page.execute_script("return window.notReloaded === true;")  # no reload
    assert _clip_ids(page)[0] == clip.id and _clip_ids(page).count(clip.id) == 1
    page.find_element(By.CSS_SELECTOR, f"#clip-{clip.id} button[value='wake']").click()
    wait_for(
        page,
        lambda d: d.find_element(By.CSS_SELECTOR, f"#clip-{clip.id} .label").text == "wake",
        "the new clip labelled from the page",
    )
    assert served.store.get(clip.id).label == "wake"


def test_browser_dns_rebinding_is_refused(browser, served: Served):
    """A page under another name that resolves to 127.0.0.1 reaches the server as its own
    origin: the server refuses it by its Host header, token or not."""
    browser.get(f"http://{REBIND_NAME}:{served.port}/?token={served.secrets.token}")
    assert "DNS rebinding" in browser.page_source
    assert "kitchen" not in browser.page_source


def test_browser_draws_the_false_wakes_chart(browser, served: Served):
    browser.get(served.url)
    browser.get(served.base + "/false-wakes")
    heights = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart rect.bar'))"
        ".map(r => [r.dataset.day, r.getBoundingClientRect().height]);"
    )
    tenday = time.strftime(
        "%Y-%m-%d", time.localtime(served.store.get(served.ids["tenday"]).received_at)
    )
    assert tenday in [day for day, _ in heights] and all(h > 0 for _, h in heights)


# -- retrain from my labels (a fake trainer: the plumbing, not training) ----------------------

FAKE_TRAIN = r"""
import json, pathlib, sys, time
args = sys.argv[1:]
out = pathlib.Path(args[args.index("--out") + 1])
gate = pathlib.Path(sys.argv[0]).with_name("gate")
out.parent.joinpath("argv.json").write_text(json.dumps(args))
print("data: building 40 positives and 60 negatives", flush=True)
print("train: epoch 1/3", flush=True)
print("waiting for the gate", flush=True)
while not gate.exists():
    time.sleep(0.05)
print("train: epoch 3/3", flush=True)
out.mkdir(parents=True)
(out / (out.name + ".tflite")).write_bytes(b"new model")
figures = {"false_reject_rate": 0.0421, "false_accepts_per_hour": 0.1, "false_accepts": 1,
           "negative_hours": 10.0, "positives": 800, "probability_cutoff": 0.9,
           "sliding_window_size": 5}
(out / (out.name + ".wakeward.json")).write_text(
    json.dumps({"phrase": args[0], "evaluation": figures}))
print("train: wrote", out, flush=True)
"""
OLD_FIGURES = {
    "false_reject_rate": 0.2013,
    "false_accepts_per_hour": 0.3333,
    "false_accepts": 1,
    "negative_hours": 3.0,
    "positives": 800,
    "probability_cutoff": 0.943,
    "sliding_window_size": 5,
}
OLD_HELDOUT_ENGINES_FRR = 0.3415  # wakeward train --engine-folds' pooled figure


def trained_model(models: Path, name: str, phrase: str, *, seed: int, quick: bool) -> Path:
    """A model folder as `wakeward train --out MODELS/NAME` leaves it, its figures
    OLD_FIGURES (retraining reads its .wakeward.json: the phrase, seed and --quick)."""
    folder = models / name
    folder.mkdir(parents=True)
    info = {
        "phrase": phrase,
        "seed": seed,
        "quick": quick,
        "evaluation": OLD_FIGURES,
        "heldout_engines": {"false_reject_rate": OLD_HELDOUT_ENGINES_FRR},
    }
    (folder / f"{name}.wakeward.json").write_text(json.dumps(info))
    (folder / f"{name}.tflite").write_bytes(b"old model")
    return folder


@dataclass
class Trainer:
    models: Path
    runs: Path
    takes: Path
    gate: Path


@pytest.fixture
def trainer(tmp_path, monkeypatch) -> Trainer:
    """A model folder as `wakeward train` writes it, a takes folder, and a fake trainer (it
    waits for its gate file before it writes the new model)."""
    models = tmp_path / "models"
    trained_model(models, "hey", "hey wakeward", seed=3, quick=False)
    takes = tmp_path / "takes"
    takes.mkdir()
    (takes / "takes.json").write_text('{"format": "wakeward-takes/1", "takes": []}')
    fake = tmp_path / "fake" / "train.py"
    fake.parent.mkdir()
    fake.write_text(FAKE_TRAIN)
    monkeypatch.setenv(retrain.TRAIN_COMMAND_ENV, f"{sys.executable} {fake}")
    return Trainer(models, tmp_path / "runs", takes, fake.with_name("gate"))


@pytest.fixture
def trainee(s, secrets, trainer) -> Iterator[TestClient]:
    """A client (holding the cookie) of an app that can retrain."""
    r = retrain.Retrainer(s, trainer.models, trainer.runs)
    app = review.make_app(s, secrets, hosts=review.Hosts.of("testserver"), retrainer=r)
    client = TestClient(app, follow_redirects=False)
    client.get(f"/?token={secrets.token}")
    yield client
    r.close()


def wait_until(condition, what: str, timeout: float = BROWSER_WAIT_S, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def figure_cells(html: str) -> dict[str, tuple[str, str]]:
    """The run page's figures: text -> (old, new)."""
    found = re.findall(
        r'<tr data-figure="([^"]+)"><th>[^<]*</th><td class="old">([^<]*)</td>'
        r'<td class="new">([^<]*)</td>',
        html,
    )
    return {text: (old, new) for text, old, new in found}


def snapshot_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_retrain_runs_train_with_my_labels_and_shows_new_beside_old(trainee, s, secrets, trainer):
    ids = fill(s)  # tenday: labelled false wake
    s.label(ids["old"], "false-wake")
    s.delete(ids["old"])  # its audio gone: training cannot take it
    before = snapshot_tree(trainer.models)
    page = trainee.get("/retrain").text
    assert '<option value="hey">hey ("hey wakeward")</option>' in page
    assert '<span id="false-wake-count">1</span>' in page and "1 more whose audio" in page
    form = {"model": "hey", "takes": str(trainer.takes), "csrf": secrets.csrf}
    assert trainee.post("/retrain", data={**form, "csrf": "guess"}).status_code == 403
    evil = {"origin": "http://evil.example"}
    assert trainee.post("/retrain", data=form, headers=evil).status_code == 403
    assert not trainer.runs.exists()  # refused: nothing started
    started = trainee.post("/retrain", data=form)
    assert started.status_code == 303
    job = started.headers["location"].removeprefix("/retrain/")
    assert job.startswith("hey-")

    def log(offset: int) -> dict:
        return trainee.get(f"/retrain/{job}/log?offset={offset}").json()

    first = wait_until(lambda: (u := log(0)) and "waiting for the gate" in u["text"] and u, "log")
    assert first["state"] == "running" and "train: epoch 1/3" in first["text"]
    assert log(first["offset"])["text"] == ""  # nothing new yet, nothing repeated
    assert trainee.post("/retrain", data=form).status_code == 400  # one run at a time
    running = trainee.get(f"/retrain/{job}").text
    assert 'data-state="running"' in running and "epoch 1/3" in running
    assert "deploy-command" not in running
    trainer.gate.touch()
    end = wait_until(lambda: (u := log(first["offset"])) and u["state"] != "running" and u, "end")
    assert end["state"] == "done" and end["returncode"] == 0
    assert "epoch 3/3" in log(first["offset"])["text"]
    argv = json.loads((trainer.runs / job / "argv.json").read_text())
    assert argv == [
        "hey wakeward",
        "--out",
        str(trainer.runs / job / "hey"),
        "--data",
        str(trainer.runs / job / "data"),
        "--seed",
        "3",
        "--false-wakes-from-store",
        "--store",
        str(s.folder),
        "--owner",
        str(trainer.takes.resolve()),
    ]
    done = trainee.get(f"/retrain/{job}").text
    cells = figure_cells(done)
    assert cells["false reject rate (held-out positives)"] == ("0.2013", "0.0421")
    # the honest figure of the model in use; the retrained one was trained without folds
    assert cells[retrain.HELDOUT_ENGINES_FIGURE] == (str(OLD_HELDOUT_ENGINES_FRR), "-")
    assert cells["false accepts per hour (held-out negative audio)"] == ("0.3333", "0.1")
    new_model = (trainer.runs / job / "hey" / "hey.tflite").resolve()
    assert f"wakeward deploy --port PORT --model {new_model}" in done
    old_model, data = (trainer.models / "hey" / "hey.tflite").resolve(), trainer.runs / job / "data"
    assert f"wakeward evaluate {old_model} --data {data.resolve()}</pre>" in done
    assert "Nothing has been deployed" in done
    assert snapshot_tree(trainer.models) == before  # the model in use is untouched
    assert f'<a href="/retrain/{job}">{job}</a>: done' in trainee.get("/retrain").text


def test_retrain_refuses_what_it_cannot_do(trainee, s, secrets, trainer):
    form = {"model": "hey", "takes": "", "csrf": secrets.csrf}
    answer = trainee.post("/retrain", data=form)
    assert answer.status_code == 400 and "label the false wakes first" in answer.text
    ids = fill(s)
    assert ids
    answer = trainee.post("/retrain", data={**form, "model": "../hey"})
    assert answer.status_code == 400 and "not a model" in answer.text
    answer = trainee.post("/retrain", data={**form, "takes": str(trainer.models)})
    assert answer.status_code == 400 and "no takes.json" in answer.text
    assert trainee.get("/retrain/..%2F..%2Fetc").status_code in (400, 404)
    assert trainee.get("/retrain/hey-20260101-000000").status_code == 400
    assert not trainer.runs.exists()


def test_retrain_can_be_cancelled(trainee, s, secrets, trainer):
    fill(s)
    form = {"model": "hey", "takes": "", "csrf": secrets.csrf}
    job = trainee.post("/retrain", data=form).headers["location"].removeprefix("/retrain/")
    wait_until(lambda: "gate" in trainee.get(f"/retrain/{job}/log").json()["text"], "start")
    assert trainee.post(f"/retrain/{job}/cancel", data={"csrf": secrets.csrf}).status_code == 303
    end = wait_until(
        lambda: (u := trainee.get(f"/retrain/{job}/log").json())["state"] != "running" and u,
        "the cancelled run's end",
    )
    assert end["state"] == "cancelled"
    assert not (trainer.runs / job / "hey").exists()


def test_without_retraining_the_page_says_so(client):
    answer = client.get("/retrain")
    assert answer.status_code == 400 and "retraining is off" in answer.text


def test_browser_retrains_and_follows_the_run_live(browser, served: Served, trainer):
    """The fake trainer: the page's plumbing (start, live output, figures, deploy command),
    not training."""
    import shutil

    from selenium.webdriver.common.by import By

    shutil.copytree(trainer.models / "hey", served.models / "hey")
    browser.get(served.url)
    browser.get(served.base + "/retrain")
    browser.find_element(By.ID, "start-retrain").click()
    wait_for(browser, lambda d: "/retrain/hey-" in d.current_url, "the run's page")
    wait_for(
        browser,
        lambda d: "waiting for the gate" in d.find_element(By.ID, "train-log").text,
        "the trainer's output on the page",
    )
    trainer.gate.touch()
    deploy = wait_for(browser, lambda d: d.find_element(By.ID, "deploy-command"), "the end")
    assert deploy.text.startswith("wakeward deploy --port PORT --model ")
    assert browser.find_element(By.ID, "train-state").text == "done"
    new = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.figures td.new")]
    assert new[:3] == ["-", "0.0421", "0.1"]  # no leave-one-engine-out figure: no folds
    assert "train: wrote" in browser.find_element(By.ID, "train-log").text
    assert (served.models / "hey" / "hey.tflite").read_bytes() == b"old model"


# -- retrain from my labels, really ----------------------------------------------------------

TRAINER_MISSING = next(
    (
        f"{module} missing: the trainer's extra (make venv-train)"
        for module in ("tensorflow", "wakeward_train")
        if importlib.util.find_spec(module) is None
    ),
    None,
)
# A --quick run from the page took 49 s on a 2-core PC with the trainer's caches filled
# (the phonemised word list, the decoded recorded speech), 2.7 min with them empty and the
# PC busy with other work; the tests/training share the same caches in one pytest session.
REAL_RETRAIN_S = 600.0


@pytest.mark.slow
@pytest.mark.skipif(TRAINER_MISSING is not None, reason=str(TRAINER_MISSING))
def test_retrain_really_trains_from_my_false_wakes(
    s, secrets, tmp_path, tmp_path_factory, monkeypatch
):
    """The real `wakeward train` (no fake), started from the page for a model trained with
    --quick (so the run is --quick too: about a minute): the clips labelled false wake go in
    as hard negatives, the run ends done, and its page shows the new model's figures, as its
    .wakeward.json has them, beside the old one's, with the command to deploy it; the model
    in use is untouched."""
    monkeypatch.delenv(retrain.TRAIN_COMMAND_ENV, raising=False)
    # the trainer's caches: out of the user's home, shared with tests/training
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    ids = fill(s)  # tenday: labelled false wake
    s.label(ids["old"], "false-wake")
    models = tmp_path / "models"
    trained_model(models, "hey", "hey test", seed=0, quick=True)
    before = snapshot_tree(models)
    r = retrain.Retrainer(s, models, tmp_path / "runs")
    app = review.make_app(s, secrets, hosts=review.Hosts.of("testserver"), retrainer=r)
    client = TestClient(app, follow_redirects=False)
    client.get(f"/?token={secrets.token}")
    try:
        started = client.post("/retrain", data={"model": "hey", "takes": "", "csrf": secrets.csrf})
        assert started.status_code == 303
        job = started.headers["location"].removeprefix("/retrain/")
        end = wait_until(
            lambda: (u := client.get(f"/retrain/{job}/log").json())["state"] != "running" and u,
            "the run's end",
            timeout=REAL_RETRAIN_S,
            every=1.0,
        )
    finally:
        r.close()
    log = (tmp_path / "runs" / job / retrain.LOG_NAME).read_text()
    assert end["state"] == "done" and end["returncode"] == 0, log[-3000:]
    assert log.startswith(f"$ {sys.executable} -m wakeward train 'hey test' --out ")
    assert log.splitlines()[0].endswith(f"--false-wakes-from-store --store {s.folder} --quick")
    went_in = re.search(r"negative/false-wake (\d+)", log)
    assert went_in and int(went_in.group(1)) > 0, log  # the owner's two false wakes
    new_info = json.loads((tmp_path / "runs" / job / "hey" / "hey.wakeward.json").read_text())
    assert new_info["phrase"] == "hey test" and new_info["quick"] is True
    page = client.get(f"/retrain/{job}").text
    cells = figure_cells(page)
    for key, text in (
        ("false_reject_rate", "false reject rate (held-out positives)"),
        ("false_accepts_per_hour", "false accepts per hour (held-out negative audio)"),
        ("probability_cutoff", "cutoff"),
    ):
        assert cells[text] == (str(OLD_FIGURES[key]), str(new_info["evaluation"][key]))
    new_model = (tmp_path / "runs" / job / "hey" / "hey.tflite").resolve()
    assert new_model.stat().st_size > 1000  # a real model, not the fake's bytes
    assert f"wakeward deploy --port PORT --model {new_model}" in page
    assert snapshot_tree(models) == before
