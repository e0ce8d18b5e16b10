"""Route stage: the first rule of conf/routes.yaml that matches picks the enhancer.

A rule matches on degradation, optionally domain and gray/colour, and a minimum degradation score; no
match sends the image to the table's default (passthrough). The chosen enhancer and the
reason are written into the row, so every result says why it went where it went.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.config import RouteRule, RoutesConf
from pipeline.enhance.rows import map_rows
from pipeline.labels import PASSTHROUGH


def _matches(rule: RouteRule, domain: str, degradation: str, score: float, channels: int | None) -> bool:
    if degradation not in rule.degradation:
        return False
    if rule.domain is not None and domain not in rule.domain:
        return False
    if rule.channels is not None and (channels is None or (1 if channels <= 2 else 3) != rule.channels):
        return False
    return score >= rule.min_score


def choose(routes: RoutesConf, domain: str, degradation: str, score: float,
           channels: int | None = None) -> tuple[str, str]:
    """(enhancer, reason) for one classified image of `channels` channels (alpha included)."""
    for i, rule in enumerate(routes.rules):
        if _matches(rule, domain, degradation, score, channels):
            where = "" if rule.domain is None else f" domain={domain}"
            where += "" if rule.channels is None else (" gray" if rule.channels == 1 else " colour")
            return rule.enhancer, f"rule {i + 1}: degradation={degradation}{where} score {score:.2f} >= {rule.min_score:.2f}"
    return routes.default, f"no rule matched degradation={degradation} domain={domain} score {score:.2f}: default"


def enhancers_in(routes: RoutesConf) -> list[str]:
    """Every enhancer the table can send images to, in rule order, without duplicates."""
    names = [rule.enhancer for rule in routes.rules] + [routes.default]
    return list(dict.fromkeys(names))


def route_batch(table: pa.Table, routes: RoutesConf) -> pa.Table:
    def one(row: dict) -> None:
        enhancer, reason = choose(routes, row["domain"], row["degradation"], row["degradation_score"], row.get("channels"))
        row.update(enhancer=enhancer, route_reason=reason)
        if enhancer != PASSTHROUGH:
            row["data"] = None  # only a passthrough copy needs the original bytes

    return map_rows(table, one, "route")
