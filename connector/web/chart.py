"""The funnel chart's geometry (pure); the template draws it as inline SVG, so no script and no image file."""

from __future__ import annotations

from dataclasses import dataclass

from connector.report import Funnel


@dataclass(frozen=True, slots=True)
class Bar:
    stage: str
    y: float
    reached: int
    on: int
    reached_width: float
    on_width: float


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: tuple[Bar, ...]


def funnel_chart(funnel: Funnel, *, width: int = 720, bar_height: int = 32, gap: int = 12) -> Chart:
    """One bar per rung: its length is how many reached the rung, the darker part how many are on it now."""
    label_width, number_room = 110, 190
    room = width - label_width - number_room
    top = max((rung.reached for rung in funnel.rungs), default=0) or 1
    bars = tuple(
        Bar(
            stage=rung.stage.value,
            y=index * (bar_height + gap),
            reached=rung.reached,
            on=rung.on,
            reached_width=round(room * rung.reached / top, 1),
            on_width=round(room * rung.on / top, 1),
        )
        for index, rung in enumerate(funnel.rungs)
    )
    height = max(len(bars) * (bar_height + gap) - gap, bar_height)
    return Chart(width=width, height=height, label_width=label_width, bar_height=bar_height, bars=bars)
