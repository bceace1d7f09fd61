"""Schema evolution check: every current schema must stay FULL_TRANSITIVE
compatible with every released version of itself in ``history/v*/`` (the
current one reads data written with each old one, and each old one reads
data written with the current one), using Apache Avro's own checker.

Run: ``python -m schemas.compat`` (exit 1 and a line per problem on failure).
When a release changes a schema, copy the new file to a new ``history/vN/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse

from schemas import SCHEMA_DIR


def check(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    problems = []
    checker = ReaderWriterCompatibilityChecker()
    for current_path in sorted(schema_dir.glob("*.avsc")):
        current = parse(current_path.read_text())
        for old_path in sorted(schema_dir.glob(f"history/*/{current_path.name}")):
            old = parse(old_path.read_text())
            for direction, reader, writer in (("backward", current, old), ("forward", old, current)):
                result = checker.get_compatibility(reader, writer)
                if result.compatibility is not SchemaCompatibilityType.compatible:
                    detail = f"{', '.join(sorted(map(str, result.messages)))} at {', '.join(sorted(map(str, result.locations)))}"
                    problems.append(f"{current_path.name} vs {old_path.parent.name}: {direction} incompatible: {detail}")
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(p)
    released = len(list(SCHEMA_DIR.glob("history/*/*.avsc")))
    print(f"{len(list(SCHEMA_DIR.glob('*.avsc')))} schemas checked against {released} released versions: "
          f"{'FULL_TRANSITIVE compatible' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
