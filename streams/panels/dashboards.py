"""The catalogue itself: every dashboard, and lookups by name (pure)."""

from __future__ import annotations

from fleetpulse.streams.panels.catalogue import KINDS, NAME, Dashboard, Panel, Variable
from fleetpulse.streams.panels.fleet import ALERTS, DRIFT, GPUS
from fleetpulse.streams.panels.health import CARDINALITY, HEALTH
from fleetpulse.streams.panels.macros import variables
from fleetpulse.streams.panels.requests import FLEET, MODEL_DETAIL

DASHBOARDS: tuple[Dashboard, ...] = (FLEET, MODEL_DETAIL, GPUS, DRIFT, ALERTS, HEALTH, CARDINALITY)
PANELS: dict[str, Panel] = {p.name: p for d in DASHBOARDS for p in d.panels}
VARIABLES: dict[str, Variable] = {v.name: v for d in DASHBOARDS for v in d.variables}


def dashboard(name: str) -> Dashboard | None:
    return next((d for d in DASHBOARDS if d.name == name), None)


def problems() -> list[str]:
    """What is wrong with the catalogue; a test keeps this empty."""
    out = []
    names = [p.name for d in DASHBOARDS for p in d.panels]
    out += [f"panel name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for d in DASHBOARDS:
        declared = {v.name for v in d.variables}
        for p in d.panels:
            if not NAME.fullmatch(p.name):
                out.append(f"{p.name!r}: a panel name is lower case, digits and _")
            if p.kind not in KINDS:
                out.append(f"{p.name}: kind {p.kind!r} is not one of {KINDS}")
            if bool(p.sql) == bool(p.promql):
                out.append(f"{p.name}: give SQL or PromQL, one of them")
            if not 1 <= p.width <= 24:
                out.append(f"{p.name}: width {p.width} is not 1..24")
            used = set(variables(p.sql))
            if used - declared:
                out.append(f"{p.name} uses {sorted(used - declared)}, which {d.name} does not declare")
    for v in VARIABLES.values():
        if any(VARIABLES[v.name] != w for d in DASHBOARDS for w in d.variables if w.name == v.name):
            out.append(f"variable {v.name} is defined twice, differently")
    return out
