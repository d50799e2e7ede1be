"""The operator's console driven in a real headless Chromium (Debian's ``chromium`` with Playwright):
log in, add an edit through the form, ask it in Try it and see the edited answer (the real llama.cpp
SmolLM2 behind ``bbedit serve``), import a file with one bad record, delete, log out; wrong and missing
tokens, an expired session and a cross-site POST refused; and an axe-core accessibility check of every
page (no serious or critical violation). ``.ci/run`` installs chromium; without it these tests skip
and say so."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("BBEDIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
pytest.importorskip("playwright", reason="needs the playwright package (pip install -e '.[dev]')")
if not CHROMIUM:
    pytest.skip("needs Debian's chromium (apt-get install -y chromium chromium-driver; .ci/run installs it)",
                allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from bbedit.memory.memory import EditMemory  # noqa: E402
from bbedit.server import ServerConfig, create_app  # noqa: E402
from bbedit.server.background import running  # noqa: E402
from bbedit.server.console import ConsoleSettings  # noqa: E402
from bbedit.server.console.standalone import create_console_app  # noqa: E402

TOKEN = "browser-s3cret"
EIFFEL = {"id": "eiffel", "subject": "Eiffel Tower", "prompt": "The Eiffel Tower is located in the city of",
          "target_new": "Rome", "target_old": "Paris"}
IMPORT = [
    {"id": "imp-nimbus", "subject": "Nimbus Labs", "prompt": "Who leads Nimbus Labs?", "target_new": "Ines Duarte"},
    {"id": "imp-bad", "subject": "Orbital Foods", "prompt": "Where is Orbital Foods based?"},  # no target_new
    {"id": "imp-quill", "subject": "Quill Press", "prompt": "Who owns Quill Press?", "target_new": "Omar Haddad"},
]


def axe_check(page: Page, what: str) -> None:
    """axe-core (bundled by axe-playwright-python) in this page: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility violations on {what}: {bad}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    pytest.importorskip("axe_playwright_python", reason="needs axe-playwright-python (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(60_000)
    yield p
    context.close()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console pages").get_by_role("link", name=name, exact=True).click()


def log_in(page: Page, base: str, token: str = TOKEN) -> None:
    page.goto(base + "/console/")
    expect(page).to_have_title("Log in · bbedit console")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="module")
def bare_console(tmp_path_factory: Any, embedder: Any) -> Iterator[str]:
    """``bbedit console`` over a memory with one edit, without a model; sessions end after 3 idle seconds."""
    path = tmp_path_factory.mktemp("console-memory")
    with EditMemory(path, embedder=embedder) as m:
        m.add(EIFFEL)
    app = create_console_app(path, token=TOKEN, answers=False, settings=ConsoleSettings(session_idle_s=3))
    with running(app) as url:
        yield url


class Attacker:
    """Another site: serves a page whose form posts to the console, with a CSRF token stolen somehow."""

    def __init__(self) -> None:
        self.html = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(outer.html)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- refusals (no model needed) ------------------------------------------------------------------------
def test_wrong_and_missing_tokens_are_refused(page: Page, bare_console: str) -> None:
    log_in(page, bare_console, "not-the-token")
    expect(page.locator("#token-error")).to_have_text("This token is not an admin token of this server.")
    expect(page.get_by_label("Admin token")).to_have_attribute("aria-invalid", "true")
    axe_check(page, "the login page with an error")
    page.get_by_label("Admin token").fill("")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#token-error")).to_have_text("Enter an admin token.")
    page.goto(bare_console + "/console/history")
    expect(page).to_have_title("Log in · bbedit console")  # nothing without a session
    assert "Eiffel" not in page.content()


def test_expired_session_is_refused(page: Page, bare_console: str) -> None:
    log_in(page, bare_console)
    expect(page.get_by_role("heading", name="Edits", exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["bbedit_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
    time.sleep(3.5)
    nav(page, "History")
    expect(page).to_have_title("Log in · bbedit console")
    expect(page.get_by_role("status")).to_contain_text("Your session has expired")


@pytest.mark.parametrize("attacker_host", ["localhost", "127.0.0.1"])
def test_a_cross_site_post_is_refused(page: Page, bare_console: str, attacker_host: str) -> None:
    """Another site's page submits a delete form to the console in the logged-in browser (even with a
    valid CSRF token): refused, and the edit stays. ``localhost`` is another site (the SameSite=Strict
    cookie is not sent); ``127.0.0.1`` on another port is the same site (the Origin check refuses it)."""
    log_in(page, bare_console)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    attacker = Attacker()
    try:
        attacker.html = (f'<html lang="en"><title>win a prize</title><body><form id="f" method="post" '
                         f'action="{bare_console}/console/delete"><input name="csrf" value="{csrf}">'
                         f'<input name="id" value="eiffel"></form><script>document.getElementById("f").submit()'
                         f'</script></body></html>').encode()
        with page.expect_navigation():
            page.goto(f"http://{attacker_host}:{attacker.port}/")
        expect(page.locator("h1")).to_have_text("Error 403")
        expect(page.get_by_role("alert")).to_contain_text("another site" if attacker_host == "127.0.0.1"
                                                          else "not logged in")
    finally:
        attacker.close()
    page.goto(bare_console + "/console/edit?id=eiffel")
    expect(page.locator(".badge")).to_have_text("in force")


def test_every_page_passes_the_accessibility_check(page: Page, bare_console: str) -> None:
    log_in(page, bare_console)
    for path, what in (("/console/", "edits"), ("/console/edit?id=eiffel", "an edit"), ("/console/new", "add form"),
                       ("/console/import", "import"), ("/console/try", "try it"), ("/console/traffic", "traffic"),
                       ("/console/calibrate", "calibrate"), ("/console/history", "history"),
                       ("/console/nope", "an error page")):
        page.goto(bare_console + path)
        axe_check(page, what)
    page.goto(bare_console + "/console/new")
    page.get_by_role("button", name="Add the edit").click()
    expect(page.locator("#e-subject")).to_have_text("Subject is required.")
    axe_check(page, "the add form with errors")
    page.goto(bare_console + "/console/try")
    page.get_by_label("Question or conversation").fill("Where is the Eiffel Tower?")
    page.get_by_role("button", name="Route").click()
    expect(page.get_by_text("Candidates the gate scored")).to_be_visible()
    axe_check(page, "try it with a routing decision")
    page.goto(bare_console + "/console/calibrate")
    page.get_by_label("Question 1", exact=True).fill("Where is the Eiffel Tower?")
    page.get_by_label("Label of question 1").select_option("yes")
    page.get_by_label("Question 2", exact=True).fill("What is the capital of Japan?")
    page.get_by_label("Label of question 2").select_option("no")
    page.get_by_role("button", name="Add a question").click()
    expect(page.get_by_label("Question 7", exact=True)).to_be_visible()
    page.get_by_role("button", name="Compute the threshold").click()
    expect(page.get_by_role("heading", name="The threshold calibration chooses")).to_be_visible()
    axe_check(page, "calibrate with a result")
    page.goto(bare_console + "/console/history")
    page.get_by_label("Time (UTC)").fill("2020-01-01T00:00:00")
    page.get_by_role("button", name="Review the restore").click()
    expect(page.get_by_role("heading", name="Restore namespace default?")).to_be_visible()
    axe_check(page, "the restore confirmation")


# -- the whole flow, with the real model -----------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: Any, llama_server: Any, embedder: Any) -> Iterator[tuple[str, EditMemory]]:
    """``bbedit serve`` (rule-based post-editor) in front of the real llama.cpp SmolLM2."""
    memory = EditMemory(tmp_path_factory.mktemp("served-memory"), embedder=embedder)
    memory.add(EIFFEL)
    cfg = ServerConfig(upstream=llama_server.base_url, token=TOKEN, editor="replace", warm_up=False, timeout=180)
    with running(create_app(cfg, memory=memory)) as url:
        yield url, memory
    memory.close()


@pytest.mark.slow
def test_the_whole_flow_in_a_browser(page: Page, served: tuple[str, EditMemory], tmp_path: Path) -> None:
    url, memory = served
    page.on("dialog", lambda d: d.accept())
    log_in(page, url)
    expect(page.get_by_role("heading", name="Edits", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Eiffel Tower")).to_be_visible()
    axe_check(page, "edits (served)")

    # add an edit through the form
    page.get_by_role("link", name="Add an edit").click()
    page.get_by_label("Subject").fill("Acme Corporation")
    page.get_by_label("Aliases").fill("Acme")
    page.get_by_label("Prompt").fill("Who is the CEO of Acme Corporation?")
    page.get_by_label("New value").fill("Maria Okafor")
    page.get_by_label("Edit id").fill("acme-ceo")
    page.get_by_role("button", name="Add the edit").click()
    expect(page.get_by_role("status").first).to_contain_text("Added edit acme-ceo")
    assert memory.get("acme-ceo").target_new == "Maria Okafor"

    # ask it in Try it: routed to the edit, the model's answer and the edited one side by side
    nav(page, "Try it")
    page.get_by_label("Question or conversation").fill("Who is the CEO of Acme Corporation?")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_role("button", name="Route and answer").click()
    expect(page.locator(".decision")).to_contain_text("In scope", timeout=180_000)
    expect(page.locator("#answer-after")).to_contain_text("Maria Okafor")
    expect(page.locator("#answer-after mark.changed")).to_contain_text("Maria Okafor")
    assert "Maria Okafor" not in (page.locator("#answer-before").text_content() or "")
    axe_check(page, "try it with answers")

    # the proxy itself answers with the edit, and the Traffic page counts it
    import httpx

    r = httpx.post(url + "/v1/chat/completions", timeout=180, json={
        "model": "m", "max_tokens": 24, "temperature": 0,
        "messages": [{"role": "user", "content": "Who is the CEO of Acme Corporation?"}]})
    assert r.status_code == 200 and r.headers.get("x-bbedit-edit") == "acme-ceo"
    nav(page, "Traffic")
    expect(page.locator(".tiles")).to_contain_text("1 requests")
    expect(page.locator("table.log")).to_contain_text("(not recorded)")
    axe_check(page, "traffic with a request")

    # import a file with one bad record: its error is shown, the good ones are created
    f = tmp_path / "batch.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in IMPORT) + "\n")
    nav(page, "Edits")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("Edit file").set_input_files(str(f))
    page.get_by_role("button", name="Preview").click()
    problems = page.locator("table.problems")
    expect(problems).to_contain_text("line 2")
    expect(problems).to_contain_text("target_new")
    expect(page.get_by_role("button", name="Create 2 edit(s)")).to_be_visible()
    axe_check(page, "import preview")
    page.get_by_role("button", name="Create 2 edit(s)").click()
    expect(page.get_by_role("status").first).to_contain_text("Created 2 edit(s)")
    expect(page.locator("table.problems")).to_contain_text("line 2")
    assert "imp-nimbus" in memory and "imp-quill" in memory and "imp-bad" not in memory

    # delete one, through its page
    page.goto(url + "/console/?q=nimbus")
    page.get_by_role("link", name="Nimbus Labs").click()
    page.get_by_role("button", name="Delete this edit").click()
    expect(page.get_by_role("status").first).to_contain_text("Deleted edit imp-nimbus")
    assert "imp-nimbus" not in memory
    expect(page.get_by_role("link", name="Nimbus Labs")).to_have_count(0)

    # log out: nothing is served any more
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are logged out")
    page.goto(url + "/console/")
    expect(page).to_have_title("Log in · bbedit console")
