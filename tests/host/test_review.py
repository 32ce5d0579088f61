"""`wakeward review`, the owner's review page: its token and CSRF rules and pages over plain
HTTP (Starlette's TestClient, fast), the command as the owner runs it (a real process), and
the page in a real browser (Debian's chromium, headless, driven by Selenium)."""

from __future__ import annotations

import functools
import http.server
import re
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
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from starlette.testclient import TestClient
from wakeward.pairing import Pairing
from wakeward.review import app as review
from wakeward.review import picture
from wakeward.store import ClipStore

from tests.host.test_store import add

DAY = 86400.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_WAIT_S = 20.0
SERVER_START_S = 20.0


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
    """A client without the token."""
    app = review.make_app(s, secrets, Pairing(tmp_path / "pairing"))
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
    "path", ["/", "/clips", "/clips/1/audio.wav", "/clips/1/picture.png", "/static/review.css"]
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
    assert "script-src 'none'" in page.headers["content-security-policy"]


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
    """The review app served by uvicorn in a thread, over a filled store."""

    def __init__(self, folder: Path, pairing: Path) -> None:
        self.store = ClipStore(folder)
        self.ids = fill(self.store)
        self.sock = review.bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.secrets = review.Secrets.new(self.port)
        self.url = review.url_of("127.0.0.1", self.sock, self.secrets.token)
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = review.server(review.make_app(self.store, self.secrets, Pairing(pairing)))
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
        self.sock.close()
        self.store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    missing = _browser_missing()
    if missing is not None:
        pytest.skip(missing)
    folder = tmp_path_factory.mktemp("review")
    running = Served(folder / "store", folder / "pairing")
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


def test_browser_lists_the_clips_newest_first(page, served: Served):
    assert page.current_url == served.base + "/clips"  # the token left the address bar
    ids = served.ids
    assert _clip_ids(page)[:4] == [ids["new"], ids["twoday"], ids["tenday"], ids["old"]]
    loaded = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const img = document.querySelector('img.picture');"
        "if (img.complete) { done(img.naturalWidth); return; }"
        "img.addEventListener('load', () => done(img.naturalWidth));"
        "img.addEventListener('error', () => done('error'));"
    )
    assert loaded == picture.WIDTH


def test_browser_plays_a_clip(page, served: Served):
    duration = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"const a = document.querySelector('#clip-{served.ids['new']} audio');"
        "a.addEventListener('loadedmetadata', () => done(a.duration));"
        "a.addEventListener('error', () => done('error ' + (a.error && a.error.code)));"
        "a.play().catch(e => done('play: ' + e));"
    )
    assert isinstance(duration, float) and duration > 0, duration


def test_browser_labels_a_clip(page, served: Served):
    from selenium.webdriver.common.by import By

    clip = served.ids["twoday"]
    page.find_element(By.CSS_SELECTOR, f"#clip-{clip} button[value='false-wake']").click()
    wait_for(
        page,
        lambda d: d.find_element(By.CSS_SELECTOR, f"#clip-{clip} .label").text == "false-wake",
        "the clip shown labelled false-wake",
    )
    assert served.store.get(clip).label == "false-wake"


def test_browser_deletes_a_clip_after_confirming(page, served: Served):
    from selenium.webdriver.common.by import By

    clip = served.store.get(served.ids["new"])
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
    assert not clip.path.exists()


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
    assert listed == [served.ids["tenday"], served.ids["old"]]
    assert all(served.store.get(i).path.exists() for i in listed)


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
