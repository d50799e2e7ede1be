"""Calibrate: label questions as "should trigger" (optionally naming the edit) or "should not", see the
threshold the gate's own calibration (:meth:`GateBase.calibrate`) chooses and what it would change,
then save it with the gate's own save (``gate.json``, or the namespace's setting in a database)."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.errors import ConfigError, EditNotFound
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console

ROWS = 6
MAX_ROWS = 200
LABELS = {"yes": "Should trigger", "no": "Should not trigger", "": "Not labelled"}


def read_rows(form: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The labelled rows of the form (``q<N>``, ``label<N>``, ``edit<N>``) and errors by field name."""
    rows, errors = [], {}
    for n in range(MAX_ROWS):
        if f"q{n}" not in form:
            continue
        q = str(form.get(f"q{n}") or "").strip()
        label = str(form.get(f"label{n}") or "")
        edit = str(form.get(f"edit{n}") or "").strip()
        row = {"n": n, "q": q, "label": label if label in LABELS else "", "edit": edit}
        if label and not q:
            errors[f"q{n}"] = "Type the question this label is for."
        elif len(q) > 2000:
            errors[f"q{n}"] = "At most 2,000 characters."
        if edit and label != "yes":
            errors[f"edit{n}"] = "Name an edit only for a question that should trigger."
        rows.append(row)
    return rows, errors


def calibrate(memory: Any, rows: list[dict[str, Any]], target: float, live_threshold: float
              ) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the gate's calibration on a fresh copy of the saved gate (the live one is not touched)."""
    from bbedit.scope.gate import load_gate

    errors: dict[str, str] = {}
    used = [r for r in rows if r["q"] and r["label"]]
    memory.refresh()
    gate = load_gate(memory)
    # one batched retrieval for every question (one embedding pass), read by the gate's own calibration
    questions = [r["q"] for r in used]
    found = dict(zip(questions, memory.retrieve_many(questions, gate.k), strict=True)) if questions else {}
    gate.memory = cast(Any, _Retrieved(memory, found, gate.k))
    for r in used:
        decision = gate.scores(r["q"])
        r["best"] = decision.edit
        r["score"] = float(decision.score)
        if r["label"] == "yes":
            if r["edit"]:
                try:
                    memory.get(r["edit"])
                except EditNotFound:
                    errors[f"edit{r['n']}"] = f"No edit with id {r['edit']!r} in this namespace."
                    continue
                if r["edit"] not in memory:
                    errors[f"edit{r['n']}"] = f"Edit {r['edit']!r} is superseded; name the edit in force."
                r["expected"] = r["edit"]
            elif decision.edit is None:
                errors[f"q{r['n']}"] = "No edit in this namespace comes close to this question: name one."
            else:
                r["expected"] = decision.edit.id
        else:
            r["expected"] = None
    if errors:
        return {}, errors
    if not any(r["label"] == "yes" for r in used):
        return {}, {"": "Label at least one question as \"should trigger\"."}
    before = float(gate.threshold)
    result = gate.calibrate([r["q"] for r in used], [r["expected"] for r in used], target_precision=target)
    chosen = result["threshold"]
    for r in used:
        right = r["best"] is not None and r["best"].id == r["expected"]
        r["now"] = r["score"] >= live_threshold and r["best"] is not None
        r["then"] = r["score"] >= chosen and r["best"] is not None
        r["ok_now"] = (r["now"] and right) if r["label"] == "yes" else not r["now"]
        r["ok_then"] = (r["then"] and right) if r["label"] == "yes" else not r["then"]
    return {"threshold": chosen, "recall": result["recall"], "precision": result["precision"], "saved": before,
            "live": live_threshold, "rows": used, "kind": gate.name,
            "no_negatives": not any(r["label"] == "no" for r in used)}, {}


class _Retrieved:
    """The memory, answering :meth:`retrieve` for the labelled questions from one batched retrieval done
    beforehand (the same memory state and ``k``); everything else goes to the memory itself."""

    def __init__(self, memory: Any, found: dict[str, Any], k: int) -> None:
        self._memory, self._found, self._k = memory, found, k

    def retrieve(self, query: str, k: int = 5) -> Any:
        got = self._found.get(query) if k == self._k else None
        return got if got is not None else self._memory.retrieve(query, k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._memory, name)


def routes(c: Console) -> list[Route]:
    def blank_rows(n: int = ROWS) -> list[dict[str, Any]]:
        return [{"n": i, "q": "", "label": "", "edit": ""} for i in range(n)]

    async def page(request: Request, session: Session) -> Response:
        router = c.ctx.router(session.namespace)
        values: dict[str, Any] = {"rows": blank_rows(), "target": "0.99"}
        result: dict[str, Any] = {}
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            await c.check_write(request, session)
            form = await c.form(request)
            rows, errors = read_rows(form)
            target_text = str(form.get("target") or "0.99")
            values = {"rows": rows or blank_rows(), "target": target_text}
            try:
                target = float(target_text)
                if not 0.5 <= target <= 1.0:
                    raise ValueError
            except ValueError:
                errors["target"] = "Target precision is a number from 0.5 to 1."
                target = 0.99
            if not errors:
                try:
                    result, errors = await c.ctx.run(calibrate, router.memory, rows, target, router.threshold)
                except ConfigError as e:
                    errors = {"": str(e)}
            status = 422 if errors else 200
        return c.render(request, "calibrate.html", session, status=status, title="Calibrate", active="calibrate",
                        values=values, result=result, errors=errors, labels=LABELS, live=router.threshold,
                        gate=router.gate.name, override=c.ctx.gate_override, max_rows=MAX_ROWS)

    async def save(request: Request, session: Session) -> Response:
        from bbedit.scope.gate import load_gate

        form = await c.form(request)
        router = c.ctx.router(session.namespace)
        try:
            threshold = float(str(form.get("threshold")))
        except ValueError:
            session.flash("error", "The threshold to save is not a number.")
            return c.redirect(request, "/calibrate")

        def write() -> Any:
            gate = load_gate(router.memory)
            gate.set_threshold(threshold)  # raises ConfigError outside the gate's range
            where = gate.save()
            live = getattr(router.gate, "set_threshold", None)
            if callable(live):
                live(threshold)  # the live gate routes with it from the next request
            return where

        try:
            where = await c.ctx.run(write)
        except ConfigError as e:
            session.flash("error", f"Not saved: {e}")
            return c.redirect(request, "/calibrate")
        note = (f" This server was started with a gate threshold of {c.ctx.gate_override}, which will override the "
                f"saved one at its next start." if c.ctx.gate_override is not None else "")
        session.flash("ok", f"Saved the gate threshold {threshold:.4f} to {where}; routing uses it now.{note}")
        return c.redirect(request, "/calibrate")

    return [Route("/calibrate", c.page(page), methods=["GET", "POST"]),
            Route("/calibrate/save", c.page(save, write=True), methods=["POST"])]
