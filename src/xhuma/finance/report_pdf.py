"""The PDF reports of a recon day, drawn with reportlab (its own graphics draw the chart: no
matplotlib). Pure: a `DayReport` in, the PDF's bytes out, on the caller's thread.

Each report opens with a title block (process, counterparty, service, day, when generated);
the summary has the table of `store.summary`'s figures and a bar chart of the day's records per
hour, ours against theirs; the exceptions report is one table, its header repeated on each page."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from xhuma.domain.currencies import money
from xhuma.finance import store
from xhuma.finance.reports import DayReport, exception_rows, hourly_volumes

STYLES = getSampleStyleSheet()
CELL = ParagraphStyle("cell", parent=STYLES["BodyText"], fontSize=7, leading=8.5)
OURS, THEIRS = colors.HexColor("#1f5f8b"), colors.HexColor("#e0892b")
GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6ee")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)
LABELS = {
    "matched": "Matched",
    "partially_matched": "Partially matched",
    "auto_resolved": "Auto-resolved",
    "unmatched_ours": "Unmatched: ours only",
    "unmatched_theirs": "Unmatched: theirs only",
    "expired": "Expired",
    "written_off": "Written off (approved)",
}


def summary_pdf(report: DayReport) -> bytes:
    summary = report.summary
    rows: list[list[Any]] = [["Result", "Count", "Amount", "Their amount", "Difference"]]
    for category in store.CATEGORIES:
        figures = summary[category]
        rows.append(
            [
                LABELS[category],
                str(figures["count"]),
                money(figures["amount"]),
                money(figures.get("their_amount")),
                money(figures.get("difference"), signed=True) if "difference" in figures else "",
            ]
        )
    table = Table(rows, colWidths=[50 * mm, 20 * mm, 32 * mm, 32 * mm, 28 * mm], hAlign="LEFT")
    table.setStyle(GRID)
    table.setStyle(TableStyle([("ALIGN", (1, 0), (-1, -1), "RIGHT")]))
    records = summary["records"]
    expired = summary["expired"]
    story: list[Flowable] = [
        *_title(report, "Reconciliation summary"),
        table,
        Spacer(0, 2 * mm),
        _cell(
            f"{records['ours']} of our records and {records['theirs']} of theirs decided in "
            f"{summary['runs']} run(s); expired: {expired['ours']} of ours, {expired['theirs']} of theirs. "
            "A match counts once however many records it joins. Amount: ours for a match, the record's "
            "own for unmatched and expired; difference: theirs minus ours."
        ),
        Spacer(0, 6 * mm),
        Paragraph(f"Records of {report.day.isoformat()} per hour ({escape(report.process.time_zone)})", STYLES["h3"]),
        _chart(*hourly_volumes(report)),
    ]
    return _build(report, story, A4)


def exceptions_pdf(report: DayReport) -> bytes:
    found = exception_rows(report)
    story: list[Flowable] = [*_title(report, "Reconciliation exceptions")]
    if not found:
        story.append(Paragraph("No exceptions: every record of the day matched.", STYLES["BodyText"]))
        return _build(report, story, landscape(A4))
    header = ["Status", "Side", "Reference", "Amount", "Time", "Rule", "Differences", "Reason"]
    rows: list[list[Any]] = [header]
    for r in found:
        rows.append(
            [
                _cell(r["status"]),
                _cell(r["side"]),
                _cell(r["reference"] or r["record_id"]),
                _cell(r["amount"]),
                _cell(r["time"]),
                _cell(r["rule"]),
                _cell(r["differences"]),
                _cell(r["reason"]),
            ]
        )
    widths = [24, 13, 62, 20, 36, 22, 40, 55]
    table = LongTable(rows, colWidths=[w * mm for w in widths], repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    table.setStyle(TableStyle([("ALIGN", (3, 1), (3, -1), "RIGHT")]))
    amount = sum(r["amount"] for r in report.exceptions)
    story += [table, Spacer(0, 3 * mm), _cell(f"{len(found)} exception(s), {money(amount)} in all (either side).")]
    return _build(report, story, landscape(A4))


def _title(report: DayReport, heading: str) -> list[Flowable]:
    process = report.process
    generated = datetime.fromtimestamp(report.generated_us // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    block = Table(
        [
            ["Process", process.name],
            ["Counterparty", process.counterparty],
            ["Service", process.service],
            ["Day", f"{report.day.isoformat()} ({process.time_zone})"],
            ["Generated at", generated],
        ],
        colWidths=[32 * mm, 120 * mm],
        hAlign="LEFT",
    )
    block.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 9),
                ("FONT", (1, 0), (1, -1), "Helvetica", 9),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return [Paragraph(escape(heading), STYLES["Title"]), block, Spacer(0, 6 * mm)]


def _chart(ours: Sequence[int], theirs: Sequence[int]) -> Drawing:
    drawing = Drawing(170 * mm, 75 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y = int(12 * mm), int(12 * mm)
    chart.width, chart.height = int(150 * mm), int(52 * mm)
    chart.data = [list(ours), list(theirs)]
    chart.categoryAxis.categoryNames = [f"{hour:02d}" for hour in range(24)]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    highest = max(1, *ours, *theirs)
    chart.valueAxis.valueMax = highest
    chart.valueAxis.valueStep = max(1, (highest + 4) // 5)
    chart.valueAxis.labels.fontSize = 6
    chart.bars[0].fillColor = OURS
    chart.bars[1].fillColor = THEIRS
    chart.groupSpacing = 2
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = int(14 * mm), int(72 * mm)
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.fontSize = 7
    legend.colorNamePairs = [(OURS, "ours (journal)"), (THEIRS, "theirs (their files)")]
    drawing.add(legend)
    drawing.add(String(75 * mm, 2 * mm, "hour of the day", fontSize=7))
    return drawing


def _build(report: DayReport, story: list[Flowable], size: tuple[float, float]) -> bytes:
    out = io.BytesIO()
    title = f"{report.process.name} {report.day.isoformat()}"

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"xhuma reconciliation: {title}")
        canvas.drawRightString(size[0] - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Reconciliation {title}",
        author="xhuma",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _cell(text: str) -> Paragraph:
    return Paragraph(escape(text), CELL)
