"""Screenshots of every console page for the README, taken in a real headless Chromium (Debian's
``chromium``, driven by Playwright) against ``bbedit serve`` in front of the embedded SmolLM2 with the
demo edits, after some real traffic through the proxy. Run ``make docs-console`` (about a minute);
writes ``docs/console/*.png``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import httpx

from bbedit.backends.embedded import EmbeddedServer
from bbedit.memory.formats import read_edits
from bbedit.memory.memory import EditMemory
from bbedit.prompts import data_dir, demo_questions
from bbedit.server import ServerConfig, create_app
from bbedit.server.background import running

log = logging.getLogger("screenshots")
OUT = Path(__file__).resolve().parent
TOKEN = "docs-token"
BAD_IMPORT = [
    {"id": "nimbus-ceo", "subject": "Nimbus Labs", "prompt": "Who leads Nimbus Labs?", "target_new": "Ines Duarte"},
    {"id": "orbital-hq", "subject": "Orbital Foods", "prompt": "Where is Orbital Foods based?"},
    {"id": "quill-owner", "subject": "Quill Press", "prompt": "Who owns Quill Press?", "target_new": "Omar Haddad"},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chromium", default=os.environ.get("BBEDIT_CHROMIUM") or shutil.which("chromium") or "")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not args.chromium:
        raise SystemExit("needs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = Path(tempfile.mkdtemp(prefix="bbedit-shots-"))
    try:
        memory = EditMemory(work / "memory")
        memory.add_many(read_edits(data_dir("memory") / "demo.jsonl"), actor="alice")
        with EmbeddedServer(n_parallel=2) as model:
            cfg = ServerConfig(upstream=model.base_url, token=TOKEN, editor="replace")
            with running(create_app(cfg, memory=memory)) as url:
                for row in demo_questions() * 2:  # real traffic, for the Traffic page
                    r = httpx.post(url + "/v1/chat/completions", timeout=120, json={
                        "model": model.model, "max_tokens": 32, "temperature": 0,
                        "messages": [{"role": "user", "content": row["question"]}]})
                    r.raise_for_status()
                shoot(sync_playwright, args.chromium, url, args.out, work)
        memory.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def shoot(sync_playwright: object, chromium: str, url: str, out: Path, work: Path) -> None:
    with sync_playwright() as p:  # type: ignore[operator]
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(120_000)
        page.on("dialog", lambda d: d.accept())

        def snap(name: str) -> None:
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            log.info("wrote %s", out / f"{name}.png")

        page.goto(url + "/console/")
        page.get_by_label("Admin token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        snap("login")
        page.get_by_label("Admin token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        snap("edits")
        page.goto(url + "/console/?q=acme")
        page.get_by_role("link", name="Acme Corporation").first.click()
        snap("edit")
        page.goto(url + "/console/new")
        page.get_by_label("Subject").fill("Veltrix Dynamics")
        page.get_by_label("New value").fill("Ana Ruiz")
        page.get_by_role("button", name="Add the edit").click()
        snap("add-errors")
        f = work / "edits.jsonl"
        f.write_text("\n".join(json.dumps(r) for r in BAD_IMPORT) + "\n")
        page.goto(url + "/console/import")
        page.get_by_label("Edit file").set_input_files(str(f))
        page.get_by_role("button", name="Preview").click()
        snap("import-preview")
        page.goto(url + "/console/try")
        page.get_by_label("Question or conversation").fill("Who is the CEO of Acme Corporation?")
        page.get_by_label("Max tokens").fill("40")
        page.get_by_role("button", name="Route and answer").click()
        page.locator("#answer-after").wait_for()
        snap("try-it")
        page.goto(url + "/console/traffic")
        snap("traffic")
        page.goto(url + "/console/calibrate")
        rows = [("Who is the CEO of Acme Corp?", "yes"), ("Where is the Eiffel Tower?", "yes"),
                ("Who runs Acme these days?", "yes"), ("What is the capital of Japan?", "no"),
                ("Who is the CEO of Microsoft?", "no"), ("How tall is the Eiffel Tower?", "no")]
        for n, (q, label) in enumerate(rows, 1):
            page.get_by_label(f"Question {n}", exact=True).fill(q)
            page.get_by_label(f"Label of question {n}").select_option(label)
        page.get_by_role("button", name="Compute the threshold").click()
        snap("calibrate")
        page.goto(url + "/console/?q=eiffel")
        page.get_by_role("link", name="Eiffel Tower").first.click()
        page.get_by_role("button", name="Delete this edit").click()
        page.goto(url + "/console/history")
        snap("history")
        browser.close()


if __name__ == "__main__":
    main()
