"""Where tests find the project and the shared reference data, wherever the
test module sits."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout
SHARED = ROOT.parent / "shared" / "reference"  # real runs, TweetEval, MiroFish cases (never copied in)
