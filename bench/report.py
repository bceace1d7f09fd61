"""Render a results JSON as the Markdown table of docs/performance.md.

    python -m bench.report bench/results/full.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def fmt(v) -> str:
    if isinstance(v, (int, float)) and abs(v) >= 100:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Run `{results['name']}` of {results['started']}, {results['seconds']:.0f} s: {m['cpus']} CPUs, "
             f"{m['platform']}, Python {m['python']}, Kafka {m['kafka']}, Cassandra {m['cassandra']}, "
             f"faust-streaming {m['faust_streaming']}, librdkafka {m['librdkafka']}; "
             f"{results['settings']['repeats']} repeat(s).", "",
             "| | figure | median | min..max | unit | ratio | reference |", "|---|---|---:|---:|---|---:|---|"]
    for key, bench in results["benchmarks"].items():
        if "error" in bench:
            lines.append(f"| {key} | FAILED: {bench['error'].strip().splitlines()[-1][:120]} | | | | | |")
            continue
        for name, f in bench["figures"].items():
            ref = f.get("reference", f.get("note", ""))
            if "reference_value" in f:
                ref += f" = {fmt(f['reference_value'])}"
            ratio = f"{f['ratio']:.3g}" if "ratio" in f else ""
            lines.append(f"| {key} | {name} | {fmt(f['median'])} | {fmt(f['min'])}..{fmt(f['max'])} | {f['unit']} "
                         f"| {ratio} | {ref} |")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        print(markdown(json.loads(Path(sys.argv[1]).read_text())), flush=True)
    except BrokenPipeError:
        # Piped into `head`: the reader left, which is not an error. Point stdout at
        # devnull so the interpreter's final flush does not raise again (Python docs, "SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
