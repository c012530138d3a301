"""Browser tests: the real stack behind the gateway serving the built web client, driven in Debian's Chromium."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from item_service.speech import Turn, Voice, synthesize
from launcher.procs import REPO_ROOT
from launcher.stack import Stack
from tests.support.exam import admin, new_user_request
from tests.support.tokens import TEST_TOKEN_KEY

# The flags the CI machines need: no sandbox as root, no GPU, nothing fetched from any other host.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WEB_DIST = REPO_ROOT / "web" / "dist"
# Where the tests leave a screenshot of each page they saw (CI keeps the folder as an artifact).
SCREENSHOTS = REPO_ROOT / "results" / "screenshots"


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def stack(
    demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """The three services as child processes; a test module may set SESSION_ENV (a short clock, say)."""
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail("the web client is not built: `make web` (make unit builds it first)")
    workdir = tmp_path_factory.mktemp("web-stack")
    bank = workdir / "item_bank.db"
    shutil.copyfile(demo_bank_template, bank)
    env = dict(getattr(request.module, "SESSION_ENV", {}))
    running = Stack(workdir, bank, TEST_TOKEN_KEY, session_env=env)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


def spoken_wav(path: Path, text: str) -> Path:
    """A WAV of `text` spoken by eSpeak NG (the demo bank's engine): what the fake microphone says."""
    pcm, rate = synthesize([Turn(Voice("en-us"), text)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return path


@pytest.fixture
def context(playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh browser profile for each test (its own --user-data-dir): no storage left over from another. A test
    module that sets MICROPHONE_SAYS gets a fake microphone saying it (the browser never asks permission)."""
    flags = list(CHROMIUM_FLAGS)
    says = getattr(request.module, "MICROPHONE_SAYS", None)
    if says is not None:
        wav = spoken_wav(tmp_path / "microphone.wav", says)
        flags += [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
        ]
    browser = open_browser(playwright, tmp_path / "profile", flags)
    try:
        yield browser
    finally:
        browser.close()


def open_browser(playwright: Playwright, profile: Path, flags: list[str] | None = None) -> BrowserContext:
    """Chromium with a profile of its own (`profile`, its --user-data-dir): another device, storage and all."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir=str(profile), executable_path=chromium_path(), args=flags or CHROMIUM_FLAGS
    )


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.pages[0] if context.pages else context.new_page()
    # A failure says what the page said, not only that a selector timed out.
    page.set_default_timeout(20_000)
    return page


def create_student(stack: Stack) -> pb.User:
    """A student account made by an admin over gRPC; its password is tests.support.exam.PASSWORD."""
    assert stack.session is not None
    with grpc.insecure_channel(stack.session.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        return stub.CreateUser(new_user_request(pb.ROLE_STUDENT), metadata=admin())


# axe-core, pinned by web/package-lock.json (npm ci installs it with the client's build tools).
AXE = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical WCAG 2.2 A/AA violations on the page as it is now, one line each."""
    # Evaluated by the test driver, not added as a <script>: the page's Content-Security-Policy rightly refuses
    # scripts from elsewhere, and the test must not weaken it.
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa']}})"
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in SERIOUS
    ]


def check_page(page: Page, name: str) -> None:
    """A screenshot of the page for the record, and no serious accessibility violation on it."""
    screenshot(page, name)
    assert accessibility_violations(page) == [], name


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
