"""Traffic: what the proxy did, from its own in-process counters (:class:`bbedit.server.metrics.Traffic`):
requests by outcome, the share edited, routing and upstream latency, upstream errors, the edits that
fired most, and the log of recent edited answers (which can be switched off; the question text is off
by default)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.server.console import charts
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console

WINDOWS = {"1h": (3600, 60, "the last hour, per minute"), "6h": (6 * 3600, 600, "the last 6 hours, per 10 minutes"),
           "24h": (86_400, 3600, "the last 24 hours, per hour")}
LAYERS = (("passthrough", "Passed through", "bar-pass"), ("edited", "Edited", "bar-edit"),
          ("kept", "Kept by the post-editor", "bar-kept"), ("upstream_error", "Upstream error", "bar-err"))


def routes(c: Console) -> list[Route]:
    async def page(request: Request, session: Session) -> Response:
        traffic = c.ctx.traffic
        key = request.query_params.get("window", "1h")
        key = key if key in WINDOWS else "1h"
        window, step, words = WINDOWS[key]
        if traffic is None:
            return c.render(request, "traffic.html", session, title="Traffic", active="traffic", traffic=None,
                            windows=WINDOWS, window=key)
        ns = session.namespace
        series = traffic.series(ns, window, step)
        summary = traffic.summary(ns, window)
        starts = [s["start"] for s in series]
        req_chart = charts.stacked_bars(
            "Requests by outcome", f"Model requests in {words}, stacked by outcome.", starts, step,
            [charts.Series(name, css, [s["outcomes"][o] for s in series]) for o, name, css in LAYERS])
        share = [(s["outcomes"]["edited"] / s["requests"] * 100) if s["requests"] else None for s in series]
        share_chart = charts.lines("Share of requests edited", f"Percent of requests edited in {words}.", starts, step,
                                   [charts.Series("Edited", "line-edit", share)])
        route_chart = charts.lines(
            "Routing latency", f"Memory retrieval and scope gate per request, p50 and p95, in {words}.", starts,
            step, [charts.Series("p50", "line-p50", [s["route_p50_ms"] for s in series]),
                   charts.Series("p95", "line-p95", [s["route_p95_ms"] for s in series])])
        up_chart = charts.lines(
            "Upstream latency", f"Upstream time to response headers, p50 and p95, in {words}.", starts, step,
            [charts.Series("p50", "line-p50", [s["upstream_p50_ms"] for s in series]),
             charts.Series("p95", "line-p95", [s["upstream_p95_ms"] for s in series])])
        err_chart = charts.stacked_bars(
            "Upstream errors", f"Upstream failures in {words}.", starts, step,
            [charts.Series("Upstream errors", "bar-err", [sum(s["errors"].values()) for s in series])])
        hits = traffic.hits(ns, 86_400)
        top = hits.most_common(10)
        memory = c.memory(session)

        def subjects() -> dict[str, str]:
            out = {}
            for i, _ in top:
                try:
                    out[i] = memory.get(i).subject
                except KeyError:
                    out[i] = "(deleted)"
            return out

        names = await c.ctx.run(subjects)
        top_chart = charts.hbars("Edits by hits in the last 24 hours", [(f"{names[i]} ({i})", n) for i, n in top])
        return c.render(request, "traffic.html", session, title="Traffic", active="traffic", traffic=traffic,
                        windows=WINDOWS, window=key, summary=summary, series=series, top=top, names=names,
                        charts=[("Requests by outcome", req_chart), ("Share of requests edited, %", share_chart),
                                ("Routing latency, ms (p50, p95)", route_chart),
                                ("Upstream latency, ms (p50, p95)", up_chart), ("Upstream errors", err_chart)], top_chart=top_chart,
                        recent=traffic.recent(ns), totals=traffic.totals(ns), layers=LAYERS, step=step)

    async def settings(request: Request, session: Session) -> Response:
        form = await c.form(request)
        if c.ctx.traffic is not None:
            if form.get("action") == "clear":
                c.ctx.traffic.clear_log(session.namespace)
                session.flash("ok", "The log of edited answers is cleared.")
            else:
                c.ctx.traffic.configure(log_answers=form.get("log_answers") == "1",
                                        log_questions=form.get("log_questions") == "1")
                session.flash("ok", "Saved: the answer log is " + ("on" if c.ctx.traffic.log_answers else "off") +
                              ", question text " + ("recorded" if c.ctx.traffic.log_questions else "not recorded") + ".")
        return c.redirect(request, "/traffic")

    return [Route("/traffic", c.page(page)), Route("/traffic/settings", c.page(settings, write=True), methods=["POST"])]
