"""Breast density as readers give it: one BI-RADS composition category (a-d) per exam in every first, second and
arbitration read; the study's final reader density; and what the woman is told about it.

The final reader density is the arbitration's when the study was arbitrated, else the two readers' when they agree,
else the denser of the two. Denser, because the statement that follows tells the woman whether her breasts are
dense: when one of her two readers found them dense, "not dense" would withhold what a reader saw (a lead can still
record an arbitration). AI density estimates never decide it (cases.density holds those, shown as estimates).

The statement is the one the US MQSA final rule requires in the lay summary (21 CFR 900.12(c)(2)(iii) and (iv),
Federal Register 88 FR 15126, 10 March 2023, in force since 10 September 2024), word for word.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases.models import Density, Read, Study
from cases.models.reading import DENSE

DENSITY_REQUIRED = "Give the breast density (BI-RADS a, b, c or d): every screening read records it."
# 21 CFR 900.12(c)(2)(iii): breasts "almost entirely fatty" or with "scattered areas of fibroglandular density".
NOT_DENSE_STATEMENT = (
    "Breast tissue can be either dense or not dense. Dense tissue makes it harder to find breast cancer on a "
    "mammogram and also raises the risk of developing breast cancer. Your breast tissue is not dense. Talk to your "
    "healthcare provider about breast density, risks for breast cancer, and your individual situation."
)
# 21 CFR 900.12(c)(2)(iv): "heterogeneously dense" or "extremely dense".
DENSE_STATEMENT = (
    "Breast tissue can be either dense or not dense. Dense tissue makes it harder to find breast cancer on a "
    "mammogram and also raises the risk of developing breast cancer. Your breast tissue is dense. In some people with "
    "dense tissue, other imaging tests in addition to a mammogram may help find cancers. Talk to your healthcare "
    "provider about breast density, risks for breast cancer, and your individual situation."
)
STATEMENT_SOURCE = "US FDA MQSA final rule, 21 CFR 900.12(c)(2)(iii)-(iv) (88 FR 15126, in force 10 September 2024)"


def density_problem(density: str | None) -> str:
    """Why a read's density cannot be recorded, or '' when it can."""
    if not density:
        return DENSITY_REQUIRED
    if density not in Density.values:
        return f"Breast density must be a, b, c or d (BI-RADS composition), not {density!r}."
    return ""


def is_dense(category: str) -> bool:
    return category in DENSE


@dataclass(frozen=True)
class FinalDensity:
    category: str  # a-d
    source: str  # "arbitration" | "both readers" | "denser of the two reads"
    statement: str  # the MQSA lay-summary statement for the woman's letter

    @property
    def dense(self) -> bool:
        return is_dense(self.category)

    @property
    def report_wording(self) -> str:
        """The report's category wording (21 CFR 900.12(c)(1)(vi))."""
        return Density(self.category).label.split(": ", 1)[1] + "."

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "dense": self.dense,
            "report_wording": self.report_wording,
            "source": self.source,
            "statement": self.statement,
            "statement_source": STATEMENT_SOURCE,
        }


def final_reader_density(study: Study, *, reads: list[Read] | None = None) -> FinalDensity | None:
    """The study's final reader density (the module's rule), or None while the reads that decide it are not all in
    (or were given before reads recorded density). `reads` may be the study's prefetched reads."""
    reads = [r for r in (reads if reads is not None else study.reads.all()) if r.is_submitted]
    by_kind = {r.kind: r for r in reads}
    arbitration = by_kind.get(Read.Kind.ARBITRATION)
    if arbitration is not None:
        return _final(arbitration.density, "arbitration")
    first, second = by_kind.get(Read.Kind.FIRST), by_kind.get(Read.Kind.SECOND)
    if first is None or second is None or study.status != Study.Status.FINAL:
        return None
    if not first.density or not second.density:
        return None
    if first.density == second.density:
        return _final(first.density, "both readers")
    return _final(max(first.density, second.density), "denser of the two reads")


def _final(category: str, source: str) -> FinalDensity | None:
    if not category:
        return None
    return FinalDensity(category, source, DENSE_STATEMENT if is_dense(category) else NOT_DENSE_STATEMENT)
