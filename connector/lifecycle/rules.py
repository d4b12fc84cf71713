"""The rules engine: which rung of the ladder a contact is on, and why.

Pure: no IO past :func:`load_rules`, no clock (``now`` is passed in), no SDK
import. RevOps write the rules in a small structured vocabulary (TOML, see
``mappings/lifecycle.toml``); it is checked and compiled once, then
:func:`decide` runs per contact.

How a decision is made: each rung present in the file has a rule; a rule
holds when its ``requires`` rung holds, the contact fits the ICP (if the
rule asks for it) and its signals match (``any`` or ``all`` of them). The
contact goes on the highest rung whose rule holds. Unless the file allows
regression, a contact already on a higher rung stays there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.errors import ConfigError, Problem
from connector.loading import problems_from, raise_problems, read_toml
from connector.mapping import COMMON_FIELDS
from connector.model import (
    KIND_CLASS,
    LADDER,
    Activity,
    ActivityClass,
    ActivityKind,
    Contact,
    CounterKind,
    Fact,
    FactSource,
    Stage,
    StageDecision,
)
from connector.model import Counter as ContactCounter

_STRICT = ConfigDict(frozen=True, extra="forbid")
_DAY = 86_400.0


# ---------------------------------------------------------------------------
# The file's schema
# ---------------------------------------------------------------------------


class FieldCondition(BaseModel):
    """A test on one contact or company field. Text compares case-insensitively."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    field: str
    eq: str | int | None = None
    ne: str | int | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None
    contains_any: list[str] | None = None
    """Text contains one of these (e.g. job titles containing "logisti")."""
    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_field_some_test(self) -> FieldCondition:
        if self.field not in COMMON_FIELDS:
            raise ValueError(f"unknown field {self.field!r}; known: {list(COMMON_FIELDS)}")
        tests = [
            self.eq,
            self.ne,
            self.in_,
            self.not_in,
            self.contains_any,
            self.gte,
            self.lte,
            self.gt,
            self.lt,
            self.exists,
        ]
        if all(test is None for test in tests):
            raise ValueError("a condition needs a test: eq, ne, in, not_in, contains_any, gte, lte, gt, lt or exists")
        return self


class IcpSpec(BaseModel):
    model_config = _STRICT

    match: Literal["all", "any"] = "all"
    conditions: list[FieldCondition] = Field(min_length=1)


class CounterPoints(BaseModel):
    """Score of one counter: ``points`` per unit, at most ``max_points`` (a total is not a list of dated events)."""

    model_config = _STRICT

    points: float = Field(gt=0)
    max_points: float = Field(gt=0)


class ScoreSpec(BaseModel):
    model_config = _STRICT

    points: dict[ActivityKind, float]
    counters: dict[CounterKind, CounterPoints] = Field(default_factory=dict)
    """Optional: what counters add to the score, decayed from their last date (no date: nothing)."""
    half_life_days: float | None = Field(default=None, gt=0)
    """Optional decay: an activity's points halve every this many days."""
    window_days: float | None = Field(default=None, gt=0)
    """Optional: activities older than this score nothing."""


class SignalSpec(BaseModel):
    """Activities of some kinds or classes, at least N of them, optionally within a window; or a score."""

    model_config = _STRICT

    kinds: list[ActivityKind] = Field(default_factory=list)
    classes: list[ActivityClass] = Field(default_factory=list)
    at_least: int = Field(default=1, ge=1)
    within_days: float | None = Field(default=None, gt=0)
    score_at_least: float | None = None
    counter: CounterKind | None = None
    """A counter instead of activities: its total is at least ``at_least`` and, with ``within_days``,
    its last date is in the window."""

    @model_validator(mode="after")
    def _activity_or_score(self) -> SignalSpec:
        has_activities = bool(self.kinds or self.classes)
        chosen = sum((has_activities, self.score_at_least is not None, self.counter is not None))
        if chosen > 1:
            raise ValueError("a signal is one of: activities (kinds/classes), counter, or score_at_least")
        if chosen == 0:
            raise ValueError("a signal needs kinds, classes, counter or score_at_least")
        return self


class RungSpec(BaseModel):
    model_config = _STRICT

    requires: Stage | None = None
    """A lower rung whose rule must hold too ("requires the rung below")."""
    icp: bool = False
    """The contact must fit the ICP."""
    match: Literal["any", "all"] = "any"
    """Whether any or all of the signals must match."""
    signals: list[SignalSpec] = Field(default_factory=list)
    description: str | None = None


class RulesFile(BaseModel):
    model_config = _STRICT

    version: Literal[1] = 1
    regression: bool = False
    """Allow a contact to move down the ladder; by default stages only move forward."""
    icp: IcpSpec | None = None
    score: ScoreSpec | None = None
    rungs: dict[Stage, RungSpec] = Field(min_length=1)


# ---------------------------------------------------------------------------
# Compiled form
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    spec: FieldCondition
    eq: Any
    ne: Any
    in_: frozenset[str] | None
    not_in: frozenset[str] | None
    contains_any: tuple[str, ...] | None

    def holds(self, value: Any) -> bool:
        spec = self.spec
        if spec.exists is not None and (value is not None) != spec.exists:
            return False
        if value is None:
            return spec.exists is not None and not spec.exists
        text = value.lower() if isinstance(value, str) else value
        if self.eq is not None and text != self.eq:
            return False
        if self.ne is not None and text == self.ne:
            return False
        if self.in_ is not None and str(text) not in self.in_:
            return False
        if self.not_in is not None and str(text) in self.not_in:
            return False
        if self.contains_any is not None and not any(part in str(text) for part in self.contains_any):
            return False
        if spec.gte is not None or spec.lte is not None or spec.gt is not None or spec.lt is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            if spec.gte is not None and value < spec.gte:
                return False
            if spec.lte is not None and value > spec.lte:
                return False
            if spec.gt is not None and value <= spec.gt:
                return False
            if spec.lt is not None and value >= spec.lt:
                return False
        return True


def _lower(value: str | int | None) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compile_condition(spec: FieldCondition) -> _Condition:
    return _Condition(
        field=spec.field,
        spec=spec,
        eq=_lower(spec.eq),
        ne=_lower(spec.ne),
        in_=frozenset(v.lower() for v in spec.in_) if spec.in_ is not None else None,
        not_in=frozenset(v.lower() for v in spec.not_in) if spec.not_in is not None else None,
        contains_any=tuple(v.lower() for v in spec.contains_any) if spec.contains_any is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _Signal:
    kinds: frozenset[str]
    at_least: int
    within: float | None  # seconds
    score_at_least: float | None
    label: str
    counter: str | None = None


@dataclass(frozen=True, slots=True)
class _Rung:
    stage: Stage
    requires: Stage | None
    icp: bool
    match_all: bool
    signals: tuple[_Signal, ...]


def _signal_label(spec: SignalSpec) -> str:
    if spec.score_at_least is not None:
        return f"score >= {spec.score_at_least:g}"
    if spec.counter is not None:
        window = f", the last within {spec.within_days:g} days" if spec.within_days else ""
        return f"{spec.counter.value} >= {spec.at_least}{window}"
    names = [k.value for k in spec.kinds] + [c.value for c in spec.classes]
    what = "/".join(names)
    window = f" within {spec.within_days:g} days" if spec.within_days else ""
    return f"{spec.at_least} x {what}{window}" if spec.at_least > 1 else f"{what}{window}"


class Rules:
    """A compiled rules file. Build it with :func:`load_rules` or :func:`compile_rules`."""

    def __init__(self, spec: RulesFile, source: str = "<memory>") -> None:
        self.spec = spec
        self.source = source
        self.regression = spec.regression
        self.icp_all = spec.icp is None or spec.icp.match == "all"
        self.icp = tuple(_compile_condition(c) for c in spec.icp.conditions) if spec.icp else ()
        self.points: dict[str, float] = {k.value: v for k, v in spec.score.points.items()} if spec.score else {}
        self.half_life = spec.score.half_life_days * _DAY if spec.score and spec.score.half_life_days else None
        self.score_window = spec.score.window_days * _DAY if spec.score and spec.score.window_days else None
        self.counter_points: dict[str, tuple[float, float]] = (
            {k.value: (c.points, c.max_points) for k, c in spec.score.counters.items()} if spec.score else {}
        )
        rungs = []
        for stage in LADDER:
            rung = spec.rungs.get(stage)
            if rung is None:
                continue
            signals = tuple(
                _Signal(
                    kinds=frozenset(k.value for k in s.kinds)
                    | frozenset(kind.value for kind, cls in KIND_CLASS.items() if cls in s.classes),
                    at_least=s.at_least,
                    within=s.within_days * _DAY if s.within_days else None,
                    score_at_least=s.score_at_least,
                    label=_signal_label(s),
                    counter=s.counter.value if s.counter is not None else None,
                )
                for s in rung.signals
            )
            rungs.append(_Rung(stage, rung.requires, rung.icp, rung.match == "all", signals))
        self.rungs: dict[Stage, _Rung] = {r.stage: r for r in rungs}
        self.top_down: tuple[_Rung, ...] = tuple(reversed(rungs))
        self.needs_score = any(s.score_at_least is not None for r in rungs for s in r.signals)


def _check(spec: RulesFile, file: str) -> list[Problem]:
    problems: list[Problem] = []
    for stage, rung in spec.rungs.items():
        key = f"rungs.{stage.value}"
        if rung.requires is not None:
            if rung.requires.rank >= stage.rank:
                problems.append(Problem(file, f"{key}.requires", f"must name a lower rung than {stage.value}"))
            elif rung.requires not in spec.rungs:
                problems.append(
                    Problem(file, f"{key}.requires", f"rung {rung.requires.value} has no rule in this file")
                )
        if rung.icp and spec.icp is None:
            problems.append(Problem(file, f"{key}.icp", "asks for the ICP but the file has no [icp] section"))
        if not rung.signals and not rung.icp and rung.requires is None:
            problems.append(Problem(file, key, "has no condition: add signals, icp = true or requires"))
        for index, signal in enumerate(rung.signals):
            if signal.score_at_least is not None and spec.score is None:
                problems.append(Problem(file, f"{key}.signals.{index}.score_at_least", "needs a [score] section"))
    return problems


def compile_rules(data: dict[str, Any], file: str = "<memory>") -> Rules:
    """Check and compile rules given as parsed TOML; raise ``ConfigError`` listing every problem."""
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as error:
        problems = problems_from(error, file)
        raise_problems(file, problems)
        raise  # pragma: no cover - raise_problems always raises here
    raise_problems(file, _check(spec, file))
    return Rules(spec, file)


def load_rules(path: Path) -> Rules:
    return compile_rules(read_toml(path), str(path))


def check_rules(path: Path) -> list[Problem]:
    try:
        load_rules(path)
    except ConfigError as error:
        return error.problems
    return []


# ---------------------------------------------------------------------------
# Deciding
# ---------------------------------------------------------------------------


def _field_value(contact: Contact, field: str) -> Any:
    if field.startswith("company."):
        company = contact.company
        return getattr(company, field[8:]) if company is not None else None
    return getattr(contact, field)


class _Evaluation:
    """Per-contact working state; holds the facts of every condition that held."""

    __slots__ = ("acts", "contact", "icp_result", "memo", "now_ts", "rules", "score_parts", "score_value")

    def __init__(self, rules: Rules, contact: Contact, acts: list[tuple[str, float, Activity]], now_ts: float) -> None:
        self.rules = rules
        self.contact = contact
        self.acts = acts
        self.now_ts = now_ts
        self.memo: dict[Stage, bool] = {}
        self.icp_result: bool | None = None
        self.score_value: float | None = None
        self.score_parts: dict[str, float] = {}

    def fits_icp(self) -> bool:
        if self.icp_result is None:
            rules = self.rules
            results = (c.holds(_field_value(self.contact, c.field)) for c in rules.icp)
            self.icp_result = all(results) if rules.icp_all else any(results)
        return self.icp_result

    def score(self) -> float:
        if self.score_value is None:
            rules = self.rules
            total = 0.0
            parts: dict[str, float] = {}
            for kind, ts, _ in self.acts:
                points = rules.points.get(kind)
                if not points:
                    continue
                age = self.now_ts - ts
                if rules.score_window is not None and age > rules.score_window:
                    continue
                if rules.half_life is not None:
                    points *= 0.5 ** (age / rules.half_life)
                total += points
                parts[kind] = parts.get(kind, 0.0) + points
            for counter in self.contact.counters:
                weight = rules.counter_points.get(counter.kind)
                if weight is None or counter.last_at is None or not counter.total:
                    continue  # undated: no way to tell an old total from a fresh one, so it scores nothing
                age = max(self.now_ts - counter.last_at.timestamp(), 0.0)
                if rules.score_window is not None and age > rules.score_window:
                    continue
                points = min(weight[0] * counter.total, weight[1])
                if rules.half_life is not None:
                    points *= 0.5 ** (age / rules.half_life)
                total += points
                name = f"{counter.kind} (counter)"
                parts[name] = parts.get(name, 0.0) + points
            self.score_value = total
            self.score_parts = parts
        return self.score_value

    def signal_holds(self, signal: _Signal) -> bool:
        if signal.score_at_least is not None:
            return self.score() >= signal.score_at_least
        if signal.counter is not None:
            return self._counter(signal) is not None
        kinds = signal.kinds
        needed = signal.at_least
        if signal.within is None:
            for kind, _, _ in self.acts:
                if kind in kinds:
                    needed -= 1
                    if not needed:
                        return True
            return False
        cutoff = self.now_ts - signal.within
        for kind, ts, _ in self.acts:
            if ts >= cutoff and kind in kinds:
                needed -= 1
                if not needed:
                    return True
        return False

    def holds(self, rung: _Rung) -> bool:
        cached = self.memo.get(rung.stage)
        if cached is not None:
            return cached
        result = True
        if rung.icp and not self.fits_icp():
            result = False
        elif rung.signals:
            if rung.match_all:
                for signal in rung.signals:
                    if not self.signal_holds(signal):
                        result = False
                        break
            else:
                result = False
                for signal in rung.signals:
                    if self.signal_holds(signal):
                        result = True
                        break
        if result and rung.requires is not None:
            result = self.holds(self.rules.rungs[rung.requires])
        self.memo[rung.stage] = result
        return result

    # -- explanation (only for the rung that was chosen) -------------------
    def explain(self, rung: _Rung) -> tuple[list[str], list[Fact]]:
        reasons: list[str] = []
        facts: list[Fact] = []
        seen_activities: set[int] = set()
        current: _Rung | None = rung
        prefix = ""
        while current is not None:
            head = f"{prefix}{current.stage.value}"
            if current.icp:
                reasons.append(f"{head}: fits the ICP")
                facts.extend(self._icp_facts())
            for signal in current.signals:
                if not self.signal_holds(signal):
                    continue
                if signal.score_at_least is not None:
                    reasons.append(f"{head}: score {self.score():.1f} >= {signal.score_at_least:g}")
                    facts.extend(
                        Fact(source=FactSource.SCORE, name=kind, value=f"{points:.1f}")
                        for kind, points in sorted(self.score_parts.items())
                    )
                    continue
                if signal.counter is not None:
                    counter = self._counter(signal)
                    assert counter is not None
                    reasons.append(f"{head}: {signal.label} ({counter.total})")
                    facts.append(
                        Fact(source=FactSource.COUNTER, name=counter.kind, value=str(counter.total), at=counter.last_at)
                    )
                    if not current.match_all:
                        break
                    continue
                matched = self._matching(signal)
                reasons.append(f"{head}: {signal.label} ({len(matched)} found)")
                for activity in matched:
                    if id(activity) in seen_activities:
                        continue
                    seen_activities.add(id(activity))
                    facts.append(
                        Fact(
                            source=FactSource.ACTIVITY,
                            name=activity.kind,
                            value=activity.detail or activity.kind,
                            at=activity.occurred_at,
                        )
                    )
                if not current.match_all:
                    break
            current = self.rules.rungs[current.requires] if current.requires is not None else None
            prefix = "requires "
        facts.sort(key=lambda f: (f.source != "activity", f.at.timestamp() if f.at else 0.0))
        return reasons, facts

    def _counter(self, signal: _Signal) -> ContactCounter | None:
        """The contact's counter that meets ``signal`` (total, and last date in the window), if any."""
        for counter in self.contact.counters:
            if counter.kind != signal.counter or counter.total < signal.at_least:
                continue
            if signal.within is not None:
                last = counter.last_at.timestamp() if counter.last_at is not None else None
                if last is None or last < self.now_ts - signal.within or last > self.now_ts:
                    continue
            return counter
        return None

    def _matching(self, signal: _Signal) -> list[Activity]:
        cutoff = self.now_ts - signal.within if signal.within is not None else -math.inf
        return [a for kind, ts, a in self.acts if kind in signal.kinds and ts >= cutoff]

    def _icp_facts(self) -> list[Fact]:
        return [
            Fact(source=FactSource.FIELD, name=c.field, value=str(_field_value(self.contact, c.field)))
            for c in self.rules.icp
        ]


def _usable_activities(
    activities: Iterable[Activity], now_ts: float
) -> tuple[list[tuple[str, float, Activity]], Counter[str] | None, float | None]:
    """Known activities up to ``now`` (oldest first as given), unknown kinds counted, and the instant of the
    earliest known activity still to come (``None`` when none is dated after ``now``)."""
    acts: list[tuple[str, float, Activity]] = []
    unknown: Counter[str] | None = None
    upcoming: float | None = None
    for activity in activities:
        kind = activity.kind
        if kind not in _KNOWN:
            if unknown is None:
                unknown = Counter()
            unknown[kind] += 1
            continue
        ts = activity.occurred_at.timestamp()
        if ts <= now_ts:
            acts.append((kind, ts, activity))
        elif upcoming is None or ts < upcoming:
            upcoming = ts
    return acts, unknown, upcoming


def _next_window_end(rules: Rules, acts: list[tuple[str, float, Activity]], now_ts: float) -> float | None:
    """With regression on, the next moment an activity leaves a window (a signal's or the score's), when a
    lower rung could follow. Forward-only rules never move down, so they need no such moment."""
    ends: list[float] = []
    windows = [s.within for r in rules.top_down for s in r.signals if s.within is not None]
    if rules.score_window is not None:
        windows.append(rules.score_window)
    for within in set(windows):
        ends.extend(ts + within + 1.0 for _, ts, _ in acts if ts + within + 1.0 > now_ts)
    return min(ends) if ends else None


def _again_at(upcoming: float | None, window_end: float | None) -> datetime | None:
    moments = [m for m in (upcoming, window_end) if m is not None]
    if not moments:
        return None
    return datetime.fromtimestamp(min(moments), UTC)


_KNOWN = frozenset(kind.value for kind in ActivityKind)


def decide(
    contact: Contact,
    activities: Sequence[Activity] | None,
    rules: Rules,
    *,
    now: datetime,
    explain: bool = True,
) -> StageDecision:
    """The rung ``contact`` belongs on as of ``now``.

    ``activities`` defaults to ``contact.activities``. Activities after
    ``now`` are ignored (they had not happened yet), and the earliest of them
    becomes the decision's ``decide_again_at``: the moment time alone may
    change the outcome (with regression on, so does the next moment an
    activity leaves a window). Unknown kinds are counted in the decision
    and ignored. With ``explain=False`` the reasons
    and facts are left out (faster, for bulk runs that only need the rung).
    """
    now_ts = now.timestamp()
    acts, unknown, upcoming = _usable_activities(contact.activities if activities is None else activities, now_ts)
    again_at = _again_at(upcoming, _next_window_end(rules, acts, now_ts) if rules.regression else None)
    evaluation = _Evaluation(rules, contact, acts, now_ts)
    chosen: _Rung | None = None
    for rung in rules.top_down:
        if evaluation.holds(rung):
            chosen = rung
            break
    unknown_kinds = tuple(sorted(unknown.items())) if unknown else ()
    current = contact.stage
    if not rules.regression and current is not None and (chosen is None or current.rank > chosen.stage.rank):
        computed = chosen.stage.value if chosen else "no rung"
        return StageDecision(
            stage=current,
            rule="forward-only",
            reasons=(f"kept {current.value}: stages only move forward (rules now give {computed})",),
            facts=(Fact(source=FactSource.POLICY, name="forward-only", value=current.value),),
            score=evaluation.score_value or 0.0,
            unknown_kinds=unknown_kinds,
            decide_again_at=again_at,
        )
    if chosen is None:
        return StageDecision(
            stage=None,
            rule=None,
            reasons=("no rung's rule holds",) if explain else (),
            unknown_kinds=unknown_kinds,
            decide_again_at=again_at,
        )
    if not explain:
        return StageDecision(
            stage=chosen.stage, rule=chosen.stage.value, unknown_kinds=unknown_kinds, decide_again_at=again_at
        )
    reasons, facts = evaluation.explain(chosen)
    if rules.needs_score:
        evaluation.score()
    return StageDecision(
        stage=chosen.stage,
        rule=chosen.stage.value,
        reasons=tuple(reasons),
        facts=tuple(facts),
        score=round(evaluation.score_value or 0.0, 3),
        unknown_kinds=unknown_kinds,
        decide_again_at=again_at,
    )
