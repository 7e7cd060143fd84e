"""A result letter as an A4 PDF, with ReportLab (no Django here: what the letter says comes in, bytes go out).

The PDF is made with ReportLab's invariant mode (no creation time or random document ID inside), so the same letter
gives the same bytes, and the stored file's content hash names it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle


@dataclass(frozen=True)
class LetterContent:
    reference: str
    date_text: str
    service_name: str
    service_address: list[str]
    service_phone: str
    recipient: list[str]  # name, then the lines under it (patient ID, date of birth)
    subject: str
    paragraphs: list[str]
    density_heading: str = ""
    density_paragraphs: list[str] = field(default_factory=list)


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["Normal"], fontName="Helvetica", fontSize=11, leading=15, spaceAfter=8)
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=9, leading=12, spaceAfter=0),
        "service": ParagraphStyle("service", parent=body, fontName="Helvetica-Bold", fontSize=13, spaceAfter=2),
        "subject": ParagraphStyle("subject", parent=body, fontName="Helvetica-Bold", fontSize=12, spaceBefore=6),
        "heading": ParagraphStyle("heading", parent=body, fontName="Helvetica-Bold", fontSize=11, spaceBefore=4),
    }


def _lines(lines: list[str]) -> str:
    return "<br/>".join(escape(line) for line in lines if line)


def letter_pdf(content: LetterContent) -> bytes:
    styles = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=22 * mm,
        rightMargin=22 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=content.subject,
        author=content.service_name,
        subject=f"Breast screening result letter {content.reference}",
        invariant=1,
    )
    service = [Paragraph(escape(content.service_name), styles["service"])]
    address = list(content.service_address) + ([f"Telephone {content.service_phone}"] if content.service_phone else [])
    if address:
        service.append(Paragraph(_lines(address), styles["small"]))
    heading = Table(
        [[Paragraph(_lines(content.recipient), styles["body"]), service]],
        colWidths=[95 * mm, None],
        style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]),
    )
    story = [
        heading,
        Spacer(1, 8 * mm),
        Paragraph(
            escape(f"Date: {content.date_text}") + "<br/>" + escape(f"Our reference: {content.reference}"),
            styles["small"],
        ),
        Spacer(1, 4 * mm),
        Paragraph(escape(content.subject), styles["subject"]),
    ]
    story += [Paragraph(escape(p).replace("\n", "<br/>"), styles["body"]) for p in content.paragraphs]
    if content.density_paragraphs:
        box = [Paragraph(escape(content.density_heading), styles["heading"])]
        box += [Paragraph(escape(p), styles["body"]) for p in content.density_paragraphs]
        framed = Table(
            [[box]],
            style=TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 0.75, colors.black),
                    ("LEFTPADDING", (0, 0), (-1, -1), 8),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ]
            ),
        )
        story += [Spacer(1, 3 * mm), KeepTogether([framed])]

    def footer(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(22 * mm, 10 * mm, f"{content.service_name} · {content.reference} · page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
