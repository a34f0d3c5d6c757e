"""Phasing recipes as strings: ``"HIO**400, RAAR**1000, ER**300"``.

Grammar (case-insensitive, whitespace ignored, items separated by commas, read left to right)::

    recipe   := item ("," item)*
    item     := step | setting
    step     := ALGO [ "(" [ "beta=" ] NUMBER ")" ] [ "**" INT ]      no "**N" means 1
    ALGO     := "ER" | "HIO" | "RAAR" | "DETWIN"
                DETWIN = HIO with the support cut in half along z through its centre, restored after
                the step (PyNX's DetwinHIO): breaks the object/twin symmetry of a loose early support
    setting  := "sup=" ( INT | "off" )      support update every INT iterations from here on; off = frozen
              | "beta=" NUMBER              default β of the following HIO / RAAR steps (0 < β < 1)
              | "pos=" ( "on" | "off" )     positivity (real part ≥ 0 inside the support) from here on
              | "border=" ( "on" | "off" )  support updates change only the support's border from here on

Examples: ``"HIO**400, RAAR**1000, ER**300"`` (PyNX-like default, support update every 20 iterations);
``"sup=50, HIO(0.7)**200, sup=off, ER**100"``; ``"border=on, ER**400"`` (a constrained refinement).

Settings hold until changed. Defaults: ``sup=20``, ``beta=0.9``, ``pos=off``, ``border=off`` — the caller
of :func:`parse_recipe` may pass others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import BCDIError

ALGORITHMS = ("ER", "HIO", "RAAR", "DETWIN")
DEFAULT_RECIPE = "HIO**400, RAAR**1000, ER**300"
MAX_ITERATIONS = 1_000_000

_STEP = re.compile(
    r"^(?P<algo>[A-Za-z]+)(?:\((?:beta=)?(?P<beta>[^)]*)\))?(?:\*\*(?P<n>[^*]+))?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Step:
    """``n`` iterations of one algorithm with the settings in force.

    Attributes
    ----------
    algorithm : ``"ER"``, ``"HIO"``, ``"RAAR"`` or ``"DETWIN"`` (HIO on a halved support).
    n : number of iterations.
    beta : feedback parameter (HIO, RAAR; ignored by ER).
    support_period : support update every this many iterations, 0 = frozen.
    positivity : real part kept ≥ 0 inside the support.
    border_only : support updates only change the support's one-voxel border.
    """

    algorithm: str
    n: int
    beta: float = 0.9
    support_period: int = 20
    positivity: bool = False
    border_only: bool = False


def _err(msg: str, recipe: str) -> BCDIError:
    return BCDIError(f"recipe {recipe!r}: {msg}")


def _number(text: str, what: str, recipe: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _err(f"{what} must be a number, got {text!r}", recipe) from None


def _int(text: str, what: str, recipe: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise _err(f"{what} must be a whole number, got {text!r}", recipe) from None
    return v


def _onoff(text: str, what: str, recipe: str) -> bool:
    t = text.lower()
    if t in ("on", "1", "true", "yes"):
        return True
    if t in ("off", "0", "false", "no"):
        return False
    raise _err(f"{what} must be on or off, got {text!r}", recipe)


def _check_beta(beta: float, recipe: str) -> float:
    if not 0.0 < beta < 1.0:
        raise _err(f"beta must be between 0 and 1 (exclusive), got {beta:g}", recipe)
    return beta


def parse_recipe(
    recipe: str,
    *,
    support_period: int = 20,
    beta: float = 0.9,
    positivity: bool = False,
    border_only: bool = False,
) -> list[Step]:
    """Parse a recipe string into :class:`Step` s (see the module docstring for the grammar).

    Keyword arguments give the settings in force before the first item. Raises a one-line
    :class:`BCDIError` naming the offending item.
    """
    if not isinstance(recipe, str) or not recipe.strip():
        raise BCDIError('empty phasing recipe: give e.g. "HIO**400, RAAR**1000, ER**300"')
    steps: list[Step] = []
    period, b, pos, border = int(support_period), float(beta), bool(positivity), bool(border_only)
    for raw in recipe.split(","):
        item = "".join(raw.split())
        if not item:
            raise _err("empty item between commas", recipe)
        if "=" in item and not item.endswith(")") and "(" not in item:
            key, _, val = item.partition("=")
            key = key.lower()
            if key in ("sup", "support"):
                if val.lower() in ("off", "none", "no"):
                    period = 0
                else:
                    period = _int(val, "sup", recipe)
                    if period < 0:
                        raise _err("sup must be >= 0 (0 or off freezes the support)", recipe)
            elif key == "beta":
                b = _check_beta(_number(val, "beta", recipe), recipe)
            elif key in ("pos", "positivity"):
                pos = _onoff(val, "pos", recipe)
            elif key == "border":
                border = _onoff(val, "border", recipe)
            else:
                raise _err(f"unknown setting {key!r} in {item!r}: use sup=, beta=, pos= or border=", recipe)
            continue
        m = _STEP.match(item)
        if m is None:
            raise _err(f"cannot read {item!r}: write ALGO**N such as HIO**400", recipe)
        algo = m.group("algo").upper()
        if algo not in ALGORITHMS:
            raise _err(
                f"unknown algorithm {m.group('algo')!r} in {item!r}: use ER, HIO, RAAR or DETWIN", recipe
            )
        n = 1 if m.group("n") is None else _int(m.group("n"), "the iteration count", recipe)
        if n < 1 or n > MAX_ITERATIONS:
            raise _err(f"the iteration count of {item!r} must be between 1 and {MAX_ITERATIONS}", recipe)
        sb = b if m.group("beta") is None else _check_beta(_number(m.group("beta"), "beta", recipe), recipe)
        steps.append(Step(algo, n, sb, period, pos, border))
    if not steps:
        raise _err("no algorithm step: add e.g. ER**100", recipe)
    return steps


def insert_detwin(steps: list[Step], at: int = 100, n: int = 40) -> list[Step]:
    """Put a ``DETWIN**n`` step at iteration ``at`` of a recipe that has none (PyNX's ``detwin=True``).

    The HIO / RAAR step running at iteration ``at`` is split around it and gives up ``n`` of its iterations,
    so the recipe's length is unchanged. Nothing is inserted if the recipe already detwins, is shorter than
    ``at + n`` iterations before its first ER step, or runs ER at that point.
    """
    if any(s.algorithm == "DETWIN" for s in steps):
        return list(steps)
    out: list[Step] = []
    done = 0
    inserted = False
    for s in steps:
        if (
            not inserted
            and s.algorithm in ("HIO", "RAAR")
            and done <= at < done + s.n
            and s.n - (at - done) > n
        ):
            first = at - done
            if first:
                out.append(replace(s, n=first))
            out.append(replace(s, algorithm="DETWIN", n=n))
            out.append(replace(s, n=s.n - first - n))
            inserted = True
        else:
            out.append(s)
        done += s.n
    return out


def total_iterations(steps: list[Step]) -> int:
    """Number of iterations of a parsed recipe."""
    return sum(s.n for s in steps)


def format_recipe(steps: list[Step]) -> str:
    """A canonical string for parsed steps (settings written where they change)."""
    out: list[str] = []
    prev: Step | None = None
    for s in steps:
        if prev is None or s.support_period != prev.support_period:
            out.append(f"sup={s.support_period}" if s.support_period else "sup=off")
        if prev is None or s.positivity != prev.positivity:
            out.append(f"pos={'on' if s.positivity else 'off'}")
        if prev is None or s.border_only != prev.border_only:
            out.append(f"border={'on' if s.border_only else 'off'}")
        if prev is None or s.beta != prev.beta:
            out.append(f"beta={s.beta!r}")
        out.append(f"{s.algorithm}**{s.n}")
        prev = s
    return ", ".join(out)
