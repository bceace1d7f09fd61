"""Scoring as MiroFish defines it, so the numbers compare:

* direction match: 1 if the verdict's direction equals the truth's, else 0;
* magnitude error: |verdict magnitude - truth magnitude|;
* calibration: 1 - |verdict confidence - direction match|;
* composite: 0.5 * direction + 0.3 * (1 - magnitude error) + 0.2 * calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

DIRECTIONS = ("positive", "negative", "neutral")


def load_truth(case_dir: Path) -> dict:
    path = case_dir / "truth.json"
    try:
        truth = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; an eval case holds seed.md, question.md and truth.json") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno}") from None
    if truth.get("direction") not in DIRECTIONS:
        raise ValueError(f"{path}: direction must be one of {DIRECTIONS}, got {truth.get('direction')!r}")
    for key in ("magnitude", "confidence"):
        value = truth.get(key)
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{path}: {key} must be a number in [0, 1], got {value!r}")
    return truth


def score(verdict: dict, truth: dict) -> dict:
    direction = 1.0 if verdict["direction"] == truth["direction"] else 0.0
    magnitude_error = abs(verdict["magnitude"] - truth["magnitude"])
    calibration = 1.0 - abs(verdict["confidence"] - direction)
    composite = 0.5 * direction + 0.3 * (1.0 - magnitude_error) + 0.2 * calibration
    return {"direction_match": direction, "magnitude_error": round(magnitude_error, 6),
            "calibration": round(calibration, 6), "composite": round(composite, 6)}
