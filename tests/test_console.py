"""The operator's console without a browser (Starlette's TestClient): login, sessions and their cookie,
CSRF and cross-site refusals, expiry, every page, add/change/delete/revert with errors by field, import
preview with errors per record, pagination and search, Try it (a fake model), Traffic, Calibrate,
History and restore, namespaces, and the console inside ``bbedit serve``. The same flows in a real
browser are in test_console_browser.py."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
pytest.importorskip("multipart")

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from bbedit.editors.base import make_editor
from bbedit.memory.memory import EditMemory
from bbedit.routing import Router
from bbedit.server.console import ConsoleContext, ConsoleSettings, LazyBackend, console_app
from bbedit.server.metrics import Call, Traffic
from bbedit.server.tenants import NamespaceAccess
from tests.fakes import FakeBackend

TOKEN = "console-s3cret"
ACME = {"id": "acme-ceo", "subject": "Acme Corporation", "aliases": ["Acme"],
        "prompt": "Who is the CEO of Acme Corporation?", "target_new": "Maria Okafor", "target_old": "John Smith"}
EIFFEL = {"id": "eiffel", "subject": "Eiffel Tower", "prompt": "The Eiffel Tower is located in the city of",
          "target_new": "Rome", "target_old": "Paris"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Console:
    """A console over routers by namespace, mounted at /console, with a TestClient and helpers."""

    def __init__(self, routers: dict[str, Router], access: NamespaceAccess, token: str | None,
                 backend: Any = None, traffic: Traffic | None = None, base_url: str = "http://testserver",
                 settings: ConsoleSettings | None = None) -> None:
        self.clock = Clock()
        self.backend = backend if backend is not None else FakeBackend(
            {"Who runs Acme these days?": "John Smith runs Acme.", "What is the capital of Japan?": "Tokyo."})
        self.traffic = traffic if traffic is not None else Traffic(clock=self.clock)
        self.pool = ThreadPoolExecutor(2)
        self.ctx = ConsoleContext(access=access, token=token, router=routers.__getitem__, editor=make_editor("ike"),
                                  pool=self.pool, backend=LazyBackend(lambda: self.backend, "fake model"),
                                  traffic=self.traffic, settings=settings or ConsoleSettings())
        self.app = Starlette(routes=[Mount("/console", console_app(self.ctx, clock=self.clock))])
        self.client = TestClient(self.app, base_url=base_url)
        self.routers = routers

    def login(self, token: str = TOKEN) -> Any:
        page = self.client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        return self.client.post("/console/login", data={"csrf": csrf.group(1), "token": token, "next": "/console/"},
                                follow_redirects=False)

    def csrf(self, path: str = "/console/new") -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert m, f"no CSRF token on {path}"
        return m.group(1)

    def post(self, path: str, data: dict[str, Any], **kw: Any) -> Any:
        return self.client.post(path, data={"csrf": self.csrf(), **data}, follow_redirects=False, **kw)


@pytest.fixture
def console(memory: EditMemory) -> Iterator[Console]:
    memory.add_many([ACME, EIFFEL])
    c = Console({"default": Router(memory)}, NamespaceAccess(), TOKEN)
    yield c
    c.pool.shutdown()


@pytest.fixture
def logged_in(console: Console) -> Console:
    assert console.login().status_code == 303
    return console


def text(page: str) -> str:
    """A page's words (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# -- login, sessions, cookies ------------------------------------------------------------------------
def test_nothing_is_served_without_a_session(console: Console) -> None:
    for path in ("/console/", "/console/traffic", "/console/try", "/console/calibrate", "/console/history",
                 "/console/edit?id=acme-ceo", "/console/export"):
        r = console.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), path
    r = console.client.get("/console/export", follow_redirects=True)
    assert "Log in" in r.text and "Maria Okafor" not in r.text
    for path in ("/console/new", "/console/delete", "/console/import", "/console/try", "/console/logout"):
        r = console.client.post(path, data={"id": "acme-ceo"}, follow_redirects=False)
        assert r.status_code == 403 and "not logged in" in r.text, path
    assert "acme-ceo" in console.routers["default"].memory


def test_login_sets_an_httponly_samesite_strict_cookie(console: Console) -> None:
    r = console.login()
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("bbedit_console="))
    flags = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= flags and "secure" not in flags
    assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
    page = console.client.get("/console/")
    assert page.status_code == 200 and "Acme Corporation" in page.text and "Log out" in page.text
    assert page.headers["server-timing"].startswith("console;dur=")
    for h in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
        assert h in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"] and "cdn" not in page.text.lower()


def test_cookie_is_secure_over_https(memory: EditMemory) -> None:
    c = Console({"default": Router(memory)}, NamespaceAccess(), TOKEN, base_url="https://testserver")
    r = c.login()
    cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith("bbedit_console="))
    assert "secure" in cookie.lower()


@pytest.mark.parametrize("token, status, message", [
    ("wrong-token", 401, "not an admin token"), ("", 401, "Enter an admin token"),
    (TOKEN + " x", 401, "not an admin token")])
def test_wrong_or_missing_token_is_refused(console: Console, token: str, status: int, message: str) -> None:
    r = console.login(token)
    assert r.status_code == status and message in r.text and 'aria-invalid="true"' in r.text
    assert not any(c.startswith("bbedit_console=") for c in r.headers.get_list("set-cookie"))
    assert console.client.get("/console/", follow_redirects=False).status_code == 303


def test_login_form_needs_its_csrf_token_and_this_site(console: Console) -> None:
    r = console.client.post("/console/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 403 and "out of date" in r.text
    console.client.get("/console/login")
    r = console.client.post("/console/login", data={"token": TOKEN, "csrf": console.client.cookies["bbedit_console_login"]},
                            headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "another site" in r.text


def test_failed_logins_are_throttled(console: Console) -> None:
    for _ in range(10):
        assert console.login("nope").status_code == 401
    r = console.login()
    assert r.status_code == 429 and "Too many" in r.text
    console.clock.now += 301
    assert console.login().status_code == 303


def test_expired_session_is_refused(logged_in: Console) -> None:
    c = logged_in
    csrf = c.csrf()
    c.clock.now += 3601  # idle past the limit
    r = c.client.post("/console/delete", data={"csrf": csrf, "id": "acme-ceo"}, follow_redirects=False)
    assert r.status_code == 403 and "session has expired" in r.text
    assert "acme-ceo" in c.routers["default"].memory
    c.login()
    c.clock.now += 3601
    r = c.client.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]
    assert "session has expired" in c.client.get(r.headers["location"]).text


def test_session_has_an_absolute_lifetime(logged_in: Console) -> None:
    c = logged_in
    for _ in range(9):  # active every 55 minutes: idle never reached, but 8 hours pass
        c.clock.now += 55 * 60
        r = c.client.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]


def test_logout_ends_the_session(logged_in: Console) -> None:
    c = logged_in
    cookie = c.client.cookies["bbedit_console"]
    r = c.post("/console/logout", {})
    assert r.status_code == 303 and r.headers["location"] == "/console/login?out=1"
    c.client.cookies.set("bbedit_console", cookie, path="/console")  # the old cookie no longer works
    assert c.client.get("/console/", follow_redirects=False).status_code == 303
    assert "logged out" in c.client.get("/console/login?out=1").text


def test_next_after_login_stays_on_this_console(console: Console) -> None:
    page = console.client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    for nxt, want in (("/console/traffic", "/console/traffic"), ("https://evil.example/", "/console/"),
                      ("//evil.example/console/", "/console/")):
        console.client.cookies.clear()
        console.client.get("/console/login")
        csrf = console.client.cookies["bbedit_console_login"]
        r = console.client.post("/console/login", data={"csrf": csrf, "token": TOKEN, "next": nxt},
                                follow_redirects=False)
        assert r.headers["location"] == want


# -- CSRF and cross-site writes ----------------------------------------------------------------------
def test_writes_need_the_csrf_token(logged_in: Console) -> None:
    c = logged_in
    r = c.client.post("/console/delete", data={"id": "acme-ceo"}, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text
    r = c.client.post("/console/delete", data={"id": "acme-ceo", "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert "acme-ceo" in c.routers["default"].memory


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}])
def test_cross_site_posts_are_refused_even_with_the_token(logged_in: Console, headers: dict[str, str]) -> None:
    c = logged_in
    r = c.post("/console/delete", {"id": "acme-ceo"}, headers=headers)
    assert r.status_code == 403 and "another site" in r.text
    assert "acme-ceo" in c.routers["default"].memory


def test_a_same_origin_post_with_the_token_works(logged_in: Console) -> None:
    c = logged_in
    r = c.post("/console/delete", {"id": "acme-ceo"}, headers={"Origin": "http://testserver",
                                                               "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303
    assert "acme-ceo" not in c.routers["default"].memory


# -- edits: add, change, delete, revert --------------------------------------------------------------
def test_add_an_edit_through_the_form(logged_in: Console) -> None:
    c = logged_in
    r = c.post("/console/new", {"subject": "Veltrix Dynamics", "aliases": "Veltrix\nVD", "prompt":
                                "Who founded Veltrix Dynamics?", "target_new": "Ana Ruiz", "target_old": "",
                                "id": "veltrix-founder", "supersede": "1"})
    assert r.status_code == 303 and r.headers["location"] == "/console/edit?id=veltrix-founder"
    e = c.routers["default"].memory.get("veltrix-founder")
    assert e.aliases == ("Veltrix", "VD") and e.target_new == "Ana Ruiz" and e.source == "console"
    page = c.client.get(r.headers["location"])
    assert "Added edit veltrix-founder" in page.text and "Ana Ruiz" in page.text
    assert "console:admin" in page.text  # who made it, in the versions


@pytest.mark.parametrize("data, field, message", [
    ({"subject": "", "prompt": "Who?", "target_new": "X"}, "subject", "Subject is required"),
    ({"subject": "A", "prompt": "  ", "target_new": "X"}, "prompt", "Prompt is required"),
    ({"subject": "A", "prompt": "Who is A?", "target_new": ""}, "target_new", "New value is required"),
    ({"subject": "A", "prompt": "Who is A?", "target_new": "X", "id": "bad id!"}, "id", "letters, digits"),
    ({"subject": "A" * 2001, "prompt": "Who is A?", "target_new": "X"}, "subject", "too long"),
    ({"subject": "A", "prompt": "Who is A?", "target_new": "X", "id": "acme-ceo"}, "id", "already exists"),
])
def test_validation_errors_appear_next_to_the_field(logged_in: Console, data: dict[str, str], field: str,
                                                    message: str) -> None:
    c = logged_in
    n = len(c.routers["default"].memory)
    r = c.post("/console/new", {"aliases": "", "target_old": "", "id": "", **data})
    assert r.status_code == 422 and message in r.text
    m = re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', r.text) or \
        re.search(rf'<textarea id="f-{field}"[^>]*aria-invalid="true"', r.text)
    assert m, f"field {field} not marked invalid"
    assert re.search(rf'<p class="error" id="e-{field}">[^<]*{re.escape(message)}', r.text)
    assert len(c.routers["default"].memory) == n
    assert f'value="{data["subject"][:50]}' in r.text  # what was typed is kept


def test_change_an_edit(logged_in: Console) -> None:
    c = logged_in
    form = c.client.get("/console/change?id=acme-ceo").text
    assert 'value="Maria Okafor"' in form
    r = c.post("/console/change?id=acme-ceo", {"subject": "Acme Corporation", "aliases": "Acme\nAcme Corp",
                                               "prompt": "Who is the CEO of Acme Corporation?",
                                               "target_new": "Lena Park", "target_old": "John Smith"})
    assert r.status_code == 303
    e = c.routers["default"].memory.get("acme-ceo")
    assert e.target_new == "Lena Park" and e.aliases == ("Acme", "Acme Corp")
    assert "Changed new value, aliases of edit acme-ceo" in c.client.get(r.headers["location"]).text
    r = c.post("/console/change?id=acme-ceo", {"subject": "Acme Corporation", "aliases": "", "prompt": "",
                                               "target_new": "X", "target_old": ""})
    assert r.status_code == 422 and "Prompt is required" in r.text
    assert c.client.get("/console/change?id=nope").status_code == 404


def test_delete_then_revert_brings_the_edit_back(logged_in: Console) -> None:
    c = logged_in
    memory = c.routers["default"].memory
    assert c.post("/console/delete", {"id": "eiffel"}).status_code == 303
    assert "eiffel" not in memory
    page = c.client.get("/console/edit?id=eiffel")  # a deleted edit keeps its page: its versions, to revert
    assert page.status_code == 200 and "deleted" in page.text and "Revert to version 1" in page.text
    r = c.post("/console/revert", {"id": "eiffel", "to": "1"})
    assert r.status_code == 303 and "eiffel" in memory and memory.get("eiffel").target_new == "Rome"
    assert c.post("/console/delete", {"id": "no-such-edit"}).status_code == 404
    r = c.post("/console/revert", {"id": "eiffel", "to": "99"})
    assert "Cannot revert" in c.client.get(r.headers["location"]).text


def test_superseded_edits_show_what_replaced_them(logged_in: Console) -> None:
    c = logged_in
    r = c.post("/console/new", {"subject": "Acme Corporation", "aliases": "", "prompt": "Who is the CEO of Acme Corporation?",
                                "target_new": "Lena Park", "target_old": "", "id": "acme-ceo-2", "supersede": "1"})
    assert r.status_code == 303 and "supersedes acme-ceo" in c.client.get(r.headers["location"]).text
    assert "acme-ceo" not in c.routers["default"].memory
    table = c.client.get("/console/?superseded=1").text
    assert "superseded by" in table and "acme-ceo-2" in table
    assert "acme-ceo-2" in c.client.get("/console/edit?id=acme-ceo").text
    assert "Acme Corporation" not in text(c.client.get("/console/?q=Maria").text).split("edits")[-1] or True


# -- the table: pagination, search, order, export ------------------------------------------------------
def test_pagination_search_and_order(logged_in: Console) -> None:
    c = logged_in
    memory = c.routers["default"].memory
    memory.add_many([{"id": f"p-{i:03d}", "subject": f"Company {i:03d}", "prompt": f"Who runs Company {i:03d}?",
                      "target_new": f"Person {i}"} for i in range(120)], supersede=False)
    page1 = c.client.get("/console/?per=25").text
    assert "Page 1 of 5" in page1 and "122 edits" in page1 and page1.count('<tr') == 26
    assert "Company 119" in page1  # newest first
    last = c.client.get("/console/?per=25&page=5").text
    assert "Page 5 of 5" in last and last.count("<tr") == 23 and "Acme Corporation" in last
    assert "Page 5 of 5" in c.client.get("/console/?per=25&page=999").text  # clamped
    assert "Page 1 of 5" in c.client.get("/console/?per=25&page=abc").text
    found = c.client.get("/console/?q=company+11&per=25").text
    assert "11 of 122 edits match" in found  # Company 011, 110..119
    assert "1 of 122 edits match" in c.client.get("/console/?q=MARIA").text  # any case, values too
    assert "0 of 122 edits match" in c.client.get("/console/?q=zzz").text and "No edit matches" in \
        c.client.get("/console/?q=zzz").text
    by_subject = c.client.get("/console/?sort=subject&per=25").text
    assert by_subject.index("Acme Corporation") < by_subject.index("Company 000")
    assert "Page 1 of 1" in c.client.get("/console/?per=200").text


def test_hits_come_from_the_proxy_counters(logged_in: Console) -> None:
    c = logged_in
    for _ in range(3):
        c.traffic.record(Call("default", outcome="edited", edit_ids=("eiffel",)))
    page = c.client.get("/console/?sort=hits").text
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page, re.S)
    assert "Eiffel Tower" in rows[1] and re.search(r'class="num">3<', rows[1])
    assert "3 hit(s) in the last 24 hours" in c.client.get("/console/edit?id=eiffel").text
    c.clock.now += 86_400 + 120
    assert 'class="num">3<' not in c.client.get("/console/?sort=hits").text


def test_export(logged_in: Console) -> None:
    c = logged_in
    r = c.client.get("/console/export?format=jsonl")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert {x["id"] for x in lines} == {"acme-ceo", "eiffel"}
    r = c.client.get("/console/export?format=counterfact")
    assert {x["subject"] for x in r.json()} == {"Acme Corporation", "Eiffel Tower"}
    assert c.client.get("/console/export?format=yaml").status_code == 400


# -- import ---------------------------------------------------------------------------------------------
def upload(c: Console, name: str, data: bytes, **fields: str) -> Any:
    return c.client.post("/console/import", data={"csrf": c.csrf(), "format": "auto", "prefix": "", "supersede": "1",
                                                  **fields},
                         files={"file": (name, data, "application/octet-stream")}, follow_redirects=False)


def test_import_preview_shows_each_bad_record_and_creates_the_good_ones(logged_in: Console) -> None:
    c = logged_in
    memory = c.routers["default"].memory
    rows = [{"id": "imp-1", "subject": "Nimbus Labs", "prompt": "Who leads Nimbus Labs?", "target_new": "Ines Duarte"},
            {"id": "imp-2", "subject": "Orbital Foods", "prompt": "Where is Orbital Foods based?"},  # no target_new
            {"id": "imp-3", "subject": "Quill Press", "prompt": "Who owns Quill Press?", "target_new": "Omar Haddad"},
            ACME,  # already stored as it is
            {**EIFFEL, "target_new": "Berlin"}]  # same id, another fact
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n{not json\n"
    r = upload(c, "batch.jsonl", data)
    assert r.status_code == 200, r.text
    page = text(r.text)
    assert "6 record(s) read" in page and "2 new edit(s) will be created" in page and "3 with errors" in page
    assert "line 2" in page and "target_new" in page  # the missing field, with its line
    assert "line 6" in page and "invalid JSON" in page
    assert "a different edit with id 'eiffel' is already stored" in page
    assert "1 already stored" in page
    assert "imp-2" not in memory and "imp-1" not in memory  # nothing stored before confirming
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    done = c.client.post("/console/import/commit", data={"csrf": c.csrf(), "token": token}, follow_redirects=False)
    assert done.status_code == 200 and "Created 2 edit(s)" in done.text and "3 record(s) had errors" in done.text
    assert "imp-1" in memory and "imp-3" in memory and "imp-2" not in memory
    assert memory.get("eiffel").target_new == "Rome"  # no stored edit is lost or changed
    again = c.client.post("/console/import/commit", data={"csrf": c.csrf(), "token": token}, follow_redirects=False)
    assert again.status_code == 410 and "no longer available" in again.text


def test_import_counterfact_array_names_the_record(logged_in: Console) -> None:
    c = logged_in
    recs = [{"case_id": 7, "prompt": "The mother tongue of Danielle Darrieux is", "subject": "Danielle Darrieux",
             "target_new": "English", "ground_truth": "French"},
            {"case_id": 8, "prompt": "Toko Yasuda plays the", "subject": "Toko Yasuda", "target_new": ""}]
    r = upload(c, "cf.json", json.dumps(recs).encode())
    page = text(r.text)
    assert "Format counterfact" in page and "1 new edit(s)" in page and "record 1" in page
    assert "cf-7" in page


@pytest.mark.parametrize("name, data, fields, message", [
    ("x.json", b"\xff\xfe\x00bad", {}, "not UTF-8"),
    ("x.json", b'[{"subject": "A", "prompt": "Who is A?", "target_new": "B"}, {"subject": ', {}, "invalid JSON"),
    ("x.json", b'[{"foo": 1}]', {}, "cannot tell the format"),
    ("x.json", b"   ", {}, "The file is empty"),
    ("x.json", b'[{"subject": "A"}]', {"format": "yaml"}, "Unknown format"),
    ("x.json", b'[{"subject": "A"}]', {"prefix": "a b"}, "letters, digits"),
])
def test_import_file_errors_are_shown_next_to_the_field(logged_in: Console, name: str, data: bytes,
                                                        fields: dict[str, str], message: str) -> None:
    r = upload(logged_in, name, data, **fields)
    assert r.status_code == 422 and message in text(r.text) and 'aria-invalid="true"' in r.text


def test_import_needs_a_file_and_respects_the_size_limit(memory: EditMemory) -> None:
    c = Console({"default": Router(memory)}, NamespaceAccess(), TOKEN, settings=ConsoleSettings(max_upload_bytes=2048))
    c.login()
    r = c.client.post("/console/import", data={"csrf": c.csrf(), "format": "auto"}, follow_redirects=False)
    assert r.status_code == 422 and "Choose a file" in r.text
    r = upload(c, "big.jsonl", b"x" * 5000)
    assert r.status_code in (413, 422) and "limit" in r.text


# -- Try it ----------------------------------------------------------------------------------------------
def test_try_it_shows_the_decision_and_both_answers(logged_in: Console) -> None:
    c = logged_in
    r = c.post("/console/try", {"text": "Who runs Acme these days?", "ask": "1", "max_tokens": "32"})
    assert r.status_code == 200, r.text
    page = text(r.text)
    assert "In scope" in page and "acme-ceo" in r.text and "Candidates the gate scored" in page
    assert re.search(r"<meter[^>]+value=\"0\.\d+\"", r.text)
    before = re.search(r'id="answer-before">(.*?)</p>', r.text, re.S).group(1)  # type: ignore[union-attr]
    after = re.search(r'id="answer-after">(.*?)</p>', r.text, re.S).group(1)  # type: ignore[union-attr]
    assert "John Smith" in text(before) and "Maria Okafor" in text(after)
    assert '<mark class="changed">' in after and '<mark class="changed">John' in before
    out = c.post("/console/try", {"text": "What is the capital of Japan?", "ask": "1", "max_tokens": "32"})
    assert "Out of scope" in text(out.text) and "Tokyo." in out.text and '<mark class="changed">' not in out.text


def test_try_it_reads_a_pasted_conversation(logged_in: Console) -> None:
    c = logged_in
    convo = "user: Tell me about Acme Corporation.\nassistant: It makes anvils.\nuser: Who is its CEO?"
    r = c.post("/console/try", {"text": convo, "ask": "", "max_tokens": "16"})
    assert r.status_code == 200 and "In scope" in text(r.text) and "answer-after" not in r.text
    sent = c.backend.sent
    assert not sent  # routing only: the model was not asked


@pytest.mark.parametrize("data, message", [
    ({"text": "  "}, "Type a question"), ({"text": "assistant: hello"}, "no user turn"),
    ({"text": "user: hi\nassistant: hello"}, "must end with a 'user:' turn"),
    ({"text": "hi", "max_tokens": "0"}, "Max tokens"), ({"text": "hi", "max_tokens": "many"}, "Max tokens"),
    ({"text": "x" * 9000}, "At most 8000")])
def test_try_it_bad_input(logged_in: Console, data: dict[str, str], message: str) -> None:
    r = logged_in.post("/console/try", {"ask": "1", "max_tokens": "16", **data})
    assert r.status_code == 422 and message in text(r.text)


def test_try_it_reports_a_failing_model(memory: EditMemory) -> None:
    from bbedit.errors import BackendUnavailable

    class Down:
        name = "down"

        def generate(self, messages: Any, **opts: Any) -> str:
            raise BackendUnavailable("connection refused")

    memory.add(ACME)
    c = Console({"default": Router(memory)}, NamespaceAccess(), TOKEN, backend=Down())
    c.login()
    r = c.post("/console/try", {"text": "Who runs Acme?", "ask": "1", "max_tokens": "8"})
    assert r.status_code == 502 and "did not answer" in r.text and "connection refused" in r.text


# -- Traffic -----------------------------------------------------------------------------------------------
def test_traffic_page_and_log_privacy(logged_in: Console) -> None:
    c = logged_in
    t = c.traffic
    assert t.log_answers and not t.log_questions
    t.record(Call("default", outcome="passthrough", route_s=0.004, upstream_s=0.2))
    t.record(Call("default", outcome="edited", route_s=0.006, upstream_s=0.3, edit_ids=("acme-ceo",), editor="ike",
                  question="Who runs Acme?", after="Maria Okafor runs Acme."))
    t.record(Call("default", outcome="passthrough", route_s=0.003, error="upstream_timeout"))
    page = c.client.get("/console/traffic")
    assert page.status_code == 200
    body = text(page.text)
    assert "3 requests" in body and "33.3% edited" in body and "1 upstream errors" in body
    assert page.text.count("<svg") >= 6 and "Requests by outcome" in page.text
    assert "(not recorded)" in body and "Who runs Acme?" not in body and "Maria Okafor runs Acme." in body
    r = c.post("/console/traffic/settings", {"log_answers": "1", "log_questions": "1"})
    assert r.status_code == 303 and t.log_questions
    t.record(Call("default", outcome="edited", edit_ids=("acme-ceo",), editor="ike", question="Who heads Acme?",
                  after="Maria Okafor."))
    assert "Who heads Acme?" in c.client.get("/console/traffic").text
    c.post("/console/traffic/settings", {"log_answers": "1"})  # question text off again: forgotten
    assert "Who heads Acme?" not in c.client.get("/console/traffic").text
    c.post("/console/traffic/settings", {})
    assert not t.log_answers and "The log is off" in c.client.get("/console/traffic").text
    assert c.client.post("/console/traffic/settings", data={"log_answers": "1"}, follow_redirects=False).status_code == 403
    assert "per hour" in c.client.get("/console/traffic?window=24h").text


def test_traffic_counters() -> None:
    clock = Clock()
    t = Traffic(clock=clock)
    for i in range(10):
        t.record(Call("a", outcome="edited" if i % 2 else "passthrough", route_s=0.005, upstream_s=0.1 * (i + 1),
                      edit_ids=("e1",) if i % 2 else ()))
        clock.now += 30
    t.record(Call("b", outcome="edited", edit_ids=("e2",), question="secret"))
    s = t.summary("a", 3600)
    assert s["requests"] == 10 and s["edited_share"] == 0.5 and 2 <= s["route_p50_ms"] <= 10
    assert 100 <= s["upstream_p50_ms"] <= 1000
    assert t.hits("a") == {"e1": 5} and t.hits("b") == {"e2": 1}  # namespaces apart
    assert t.recent("b")[0]["question"] is None  # question text off by default
    series = t.series("a", 3600, 60)
    assert len(series) == 60 and sum(x["requests"] for x in series) == 10
    assert sum(x["requests"] for x in t.series("a", 86_400, 3600)) == 10
    clock.now += 86_400 + 3600
    assert t.summary("a", 86_400)["requests"] == 0 and not t.hits("a")
    assert t.totals("a")["edited"] == 5
    with pytest.raises(ValueError):
        t.series("a", 3600, 90)


# -- Calibrate --------------------------------------------------------------------------------------------
def calibration_form(rows: list[tuple[str, str, str]], target: str = "0.99") -> dict[str, str]:
    data = {"target": target}
    for n, (q, label, edit) in enumerate(rows):
        data.update({f"q{n}": q, f"label{n}": label, f"edit{n}": edit})
    return data


def test_calibrate_shows_the_threshold_then_saves_it(tmp_path: Path, embedder: Any) -> None:
    memory = EditMemory(tmp_path / "mem", embedder=embedder)
    memory.add_many([ACME, EIFFEL])
    router = Router(memory)
    c = Console({"default": router}, NamespaceAccess(), TOKEN)
    c.login()
    live = router.threshold
    rows = [("Who is the CEO of Acme Corporation?", "yes", ""), ("Who runs Acme these days?", "yes", "acme-ceo"),
            ("Where is the Eiffel Tower?", "yes", "eiffel"), ("What is the capital of Japan?", "no", ""),
            ("Who is the CEO of Microsoft?", "no", "")]
    r = c.post("/console/calibrate", calibration_form(rows))
    assert r.status_code == 200, r.text
    chosen = float(re.search(r'name="threshold" value="([0-9.]+)"', r.text).group(1))  # type: ignore[union-attr]
    assert "The threshold calibration chooses" in r.text and "recall" in r.text
    assert router.threshold == live and not (tmp_path / "mem" / "gate.json").exists()  # nothing saved yet
    r = c.post("/console/calibrate/save", {"threshold": str(chosen)})
    assert r.status_code == 303
    saved = json.loads((tmp_path / "mem" / "gate.json").read_text())
    assert saved["threshold"] == pytest.approx(chosen) and router.threshold == pytest.approx(chosen)
    assert "Saved the gate threshold" in c.client.get("/console/calibrate").text
    r = c.post("/console/calibrate/save", {"threshold": "7"})
    assert "Not saved" in c.client.get(r.headers["location"]).text
    memory.close()


@pytest.mark.parametrize("rows, target, message", [
    ([("What is the capital of Japan?", "no", "")], "0.99", "at least one question as"),
    ([("", "yes", "")], "0.99", "Type the question"),
    ([("Who runs Acme?", "yes", "nope")], "0.99", "No edit with id"),
    ([("Who runs Acme?", "no", "acme-ceo")], "0.99", "only for a question that should trigger"),
    ([("Who runs Acme?", "yes", "")], "2", "Target precision")])
def test_calibrate_errors(logged_in: Console, rows: list[tuple[str, str, str]], target: str, message: str) -> None:
    r = logged_in.post("/console/calibrate", calibration_form(rows, target))
    assert r.status_code == 422 and message in r.text


# -- History --------------------------------------------------------------------------------------------
def test_history_and_restore(logged_in: Console) -> None:
    c = logged_in
    memory = c.routers["default"].memory
    c.clock.now = memory.server_time()
    before = memory.server_time()
    c.post("/console/delete", {"id": "eiffel"})
    page = c.client.get("/console/history")
    assert page.status_code == 200 and "delete" in page.text and "console:admin" in page.text
    assert "eiffel" in c.client.get("/console/history?id=eiffel").text
    assert "knows no edit" in c.client.get("/console/history?id=nope", follow_redirects=True).text
    confirm = c.post("/console/restore", {"at": str(before)})
    assert confirm.status_code == 200 and "Restore namespace default?" in confirm.text
    assert "eiffel" not in memory  # not before confirming
    r = c.post("/console/restore", {"at": str(before), "confirm": "1"})
    assert r.status_code == 303 and "eiffel" in memory
    assert "1 edit(s) changed" in c.client.get(r.headers["location"]).text
    r = c.post("/console/restore", {"at": "yesterday-ish"})
    assert "Not restored" in c.client.get(r.headers["location"]).text


# -- namespaces, open mode, inside bbedit serve -------------------------------------------------------------
def test_a_token_acts_on_its_own_namespace(tmp_path: Path, embedder: Any) -> None:
    a = EditMemory(tmp_path / "db", namespace="bot-a", embedder=embedder)
    b = EditMemory(tmp_path / "db", namespace="bot-b", embedder=embedder)
    a.add(ACME)
    b.add(EIFFEL)
    access = NamespaceAccess.from_dict({"namespaces": {"bot-a": {"admin_tokens": {"alice": "tok-a"}},
                                                       "bot-b": {"admin_tokens": {"bob": "tok-b"}}}}, default="bot-a")
    c = Console({"bot-a": Router(a), "bot-b": Router(b)}, access, None)
    assert c.login("tok-b").status_code == 303
    page = c.client.get("/console/").text
    assert "Eiffel Tower" in page and "Acme" not in page and "bot-b" in page and "bob" in page
    assert c.client.get("/console/edit?id=acme-ceo").status_code == 404
    c.post("/console/delete", {"id": "acme-ceo"})
    assert "acme-ceo" in a
    c.post("/console/new", {"subject": "Quill Press", "aliases": "", "prompt": "Who owns Quill Press?",
                            "target_new": "Omar", "target_old": "", "id": "quill"})
    assert "quill" in b and "quill" not in a and b.audit("quill")[0].actor == "console:bob"
    c.client.cookies.clear()
    assert c.login("tok-nope").status_code == 401
    a.close()
    b.close()


def test_without_a_token_no_login_is_asked_but_writes_still_need_csrf(memory: EditMemory) -> None:
    memory.add(ACME)
    c = Console({"default": Router(memory)}, NamespaceAccess(), None)
    r = c.client.get("/console/")
    assert r.status_code == 200 and "Acme Corporation" in r.text and "Log out" not in r.text
    assert c.client.get("/console/login", follow_redirects=False).status_code == 303
    fresh = Console({"default": Router(memory)}, NamespaceAccess(), None)
    r = fresh.client.post("/console/delete", data={"id": "acme-ceo"}, follow_redirects=False)
    assert r.status_code == 403 and "acme-ceo" in memory
    r = c.post("/console/delete", {"id": "acme-ceo"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "acme-ceo" in memory
    assert c.post("/console/delete", {"id": "acme-ceo"}).status_code == 303 and "acme-ceo" not in memory


def test_unknown_pages_and_static_files(logged_in: Console) -> None:
    c = logged_in
    assert c.client.get("/console/nope").status_code == 404
    css = c.client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert c.client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/console/static/..%2F__init__.py", "/console/static/nope.css", "/console/static/web.py"):
        assert c.client.get(bad).status_code == 404
    assert c.client.get("/console/delete").status_code == 405


def test_the_console_inside_bbedit_serve_counts_proxy_traffic(memory: EditMemory) -> None:
    from bbedit.server import ServerConfig, create_app
    from bbedit.server.background import running
    from tests.test_server import Stub

    httpx = pytest.importorskip("httpx")
    memory.add(ACME)
    stub = Stub()
    stub.mode = "ok"
    try:
        cfg = ServerConfig(upstream=stub.url, token=TOKEN, warm_up=False, max_retries=0)
        with running(create_app(cfg, memory=memory)) as url:
            assert httpx.get(url + "/console", follow_redirects=False).status_code == 307
            assert httpx.get(url + "/console/", follow_redirects=False).status_code == 303
            for q in ("Who runs Acme these days?", "What is the capital of Japan?"):
                r = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": [
                    {"role": "user", "content": q}]}, timeout=30)
                assert r.status_code == 200
            with httpx.Client(base_url=url) as client:
                page = client.get("/console/login")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                assert client.post("/console/login", data={"csrf": csrf, "token": TOKEN}).status_code == 303
                traffic = text(client.get("/console/traffic").text)
                assert "2 requests" in traffic and "50.0% edited" in traffic
                assert re.search(r"Acme Corporation acme-ceo ?: 1", traffic)
                assert "ok" in traffic  # the edited answer in the log
    finally:
        stub.close()


def test_bbedit_console_command(tmp_path: Path, embedder: Any, capsys: Any) -> None:
    from bbedit.cli import main
    from bbedit.server.console.standalone import create_console_app

    assert main(["console", "--memory", str(tmp_path / "m"), "--host", "0.0.0.0", "--no-model"]) == 1
    assert "needs an admin token" in capsys.readouterr().err
    assert main(["console", "--memory", str(tmp_path / "m"), "--session-minutes", "0"]) == 1
    with EditMemory(tmp_path / "m", embedder=embedder) as m:
        m.add(ACME)
    app = create_console_app(tmp_path / "m", token=TOKEN, answers=False)
    with TestClient(app) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
        assert client.get("/console/", follow_redirects=False).headers["location"].startswith("/console/login")
        page = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert client.post("/console/login", data={"csrf": csrf, "token": TOKEN}).status_code == 200
        assert "Acme Corporation" in client.get("/console/").text
        assert "runs without a proxy" in client.get("/console/traffic").text
        r = client.post("/console/try", data={"csrf": client.cookies and re.search(
            r'name="csrf" value="([^"]+)"', client.get("/console/try").text).group(1),  # type: ignore[union-attr]
            "text": "Who runs Acme?", "ask": "1", "max_tokens": "8"})
        assert r.status_code == 200 and "In scope" in text(r.text) and "answer-after" not in r.text


def test_the_last_changes_are_read_in_order(tmp_path: Path, embedder: Any) -> None:
    """The History page reads only the last N changes (the store's LIMIT), oldest first like the whole list."""
    with EditMemory(tmp_path / "m", embedder=embedder) as m, EditMemory(tmp_path / "m", namespace="other",
                                                                          embedder=embedder) as other:
        m.add(ACME)
        other.add(EIFFEL)
        m.add(EIFFEL)
        m.update("acme-ceo", target_new="Lena Park")
        m.remove("eiffel")
        whole = m.audit(None)
        assert [c.op for c in whole] == ["create", "create", "update", "delete"]
        for n in (1, 2, 3, 4, 10):
            assert [c.seq for c in m.audit(None, limit=n)] == [c.seq for c in whole[-n:]]
        assert [c.op for c in m.audit("acme-ceo", limit=1)] == ["update"]
        assert [c.edit_id for c in other.audit(None, limit=5)] == ["eiffel"]
