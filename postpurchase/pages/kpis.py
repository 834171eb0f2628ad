"""The KPIs page for the shop owner: today's numbers, and by week as charts read at a glance
(drawn on the server as SVG, see ``charts``); every shop's together, or one shop's computed
when it is chosen (the outcomes run keeps every shop's only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from postpurchase.outcomes.weekly import WEEKS, latest_kpis
from postpurchase.pages.auth import Reader
from postpurchase.pages.charts import bar_chart, line_chart
from postpurchase.pages.context import pages_context
from postpurchase.pages.rendering import page
from postpurchase.pages.shop_choice import shop_choice

router = APIRouter()


@router.get("/kpis", response_class=HTMLResponse)
def kpis_page(request: Request, user: Reader) -> HTMLResponse:
    context = pages_context(request)
    now = context.clock()
    shop = shop_choice(request, context.settings())
    with context.factory()() as session:
        kpis, series, refreshed_at = latest_kpis(session, now=now, shop=shop.key)
    tiers = sorted(kpis.get("tiers", {}).items())
    charts = {
        "repeat": line_chart(series["repeat"], title="Repeat purchase rate by week", unit="%"),
        "csat": line_chart(series["csat"], title="CSAT by week (share of 4-5 answers)", unit="%"),
        "points": line_chart(series["points"], title="Points outstanding at each week's end"),
        "orders": bar_chart(
            [(week, n or 0.0) for week, n in series["orders"]], title="Paid orders per week"
        ),
        "tiers": bar_chart([(t, float(n)) for t, n in tiers], title="Customers per tier"),
    }
    return page(
        request,
        "kpis.html",
        user=user,
        shop=shop,
        currency=shop.settings.currency if shop.key is not None else None,
        kpis=kpis,
        refreshed_at=refreshed_at,
        charts=charts,
        weeks=WEEKS,
    )
