#!/usr/bin/env python3
"""List the metric names a Grafana dashboard uses, and check that each one exists.

A dashboard panel over a metric that was renamed or never existed stays empty without any
error, so this script reads every PromQL expression in the dashboard (panel targets, nested
panels of rows, templating queries) and extracts the metric names they use. Standard library
only, so it runs anywhere Python 3.8+ does.

Usage:
  check-dashboard.py DASHBOARD.json
      print the metric names, one per line (exit 0)
  check-dashboard.py DASHBOARD.json --source crates/dingsync/src
      check them against the names the Rust code registers with metrics::counter!/gauge!/
      histogram! (exit 1 and list what is missing)
  check-dashboard.py DASHBOARD.json --metrics FILE_OR_URL
      check them against a Prometheus text exposition (a saved /metrics or its URL, e.g.
      http://127.0.0.1:8080/metrics); a metric that has not been touched yet is absent there,
      so drive the service first or use --source

A summary or histogram `x` is also exposed as `x_sum`, `x_count` (and `x_bucket`), so those
names count as present when `x` is.
"""

import argparse
import json
import pathlib
import re
import sys
import urllib.request

# PromQL words that are not metric names: aggregations, functions (also recognised by the
# following parenthesis), binary operators, modifiers and literals.
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2", "start", "end",
}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
LABEL_VALUES = re.compile(r"\blabel_values\s*\(\s*(?:([a-zA-Z_:][\w:]*)\s*,\s*)?[\w]+\s*\)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
IDENT = re.compile(r"(?<![\w.])[a-zA-Z_:][\w:]*")
SUFFIXES = ("_sum", "_count", "_bucket")


def expressions(dashboard):
    """Every PromQL expression in a dashboard: panel targets (rows' nested panels included)
    and the queries of query-type template variables."""

    def panels(items):
        for panel in items or []:
            yield panel
            yield from panels(panel.get("panels"))

    for panel in panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:
            if isinstance(target.get("expr"), str):
                yield target["expr"]
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str):
            yield query


def metric_names(expr):
    """The metric names one PromQL expression (or Grafana label_values query) uses."""
    expr = LABEL_VALUES.sub(lambda m: m.group(1) or "", expr)
    expr = STRING.sub(" ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    expr = GROUPING.sub(" ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables such as $__rate_interval
    names = set()
    for m in IDENT.finditer(expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):  # a function or aggregation
            continue
        if word.lower() in KEYWORDS:
            continue
        # IDENT never starts inside a word, so the unit of a duration ("5m") or the exponent of
        # a number ("1e3") is not taken for a name; what is left is a metric name.
        names.add(word)
    return names


def used_names(dashboard):
    names = set()
    for expr in expressions(dashboard):
        names |= metric_names(expr)
    return names


def names_in_source(root):
    """Metric names the Rust code registers, and which of them are histograms."""
    pattern = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([^"]+)"')
    names, histograms = set(), set()
    for path in pathlib.Path(root).rglob("*.rs"):
        for kind, name in pattern.findall(path.read_text(encoding="utf-8")):
            names.add(name)
            if kind == "histogram":
                histograms.add(name)
    return names, histograms


def names_in_exposition(text):
    """Sample names in a Prometheus text exposition, and the summaries/histograms declared."""
    names, aggregated = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4 and parts[3] in ("summary", "histogram"):
                aggregated.add(parts[2])
        elif line and not line.startswith("#"):
            m = IDENT.match(line)
            if m:
                names.add(m.group(0))
    return names, aggregated


def present(name, names, aggregated):
    if name in names:
        return True
    return any(name.endswith(s) and name[: -len(s)] in aggregated for s in SUFFIXES)


def read(source):
    if re.match(r"https?://", source):
        with urllib.request.urlopen(source, timeout=10) as reply:
            return reply.read().decode("utf-8")
    return pathlib.Path(source).read_text(encoding="utf-8")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", help="a Grafana dashboard JSON file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--source", help="Rust source directory to read metric names from")
    group.add_argument("--metrics", help="a /metrics text file or URL to check against")
    args = parser.parse_args(argv)

    dashboard = json.loads(pathlib.Path(args.dashboard).read_text(encoding="utf-8"))
    used = sorted(used_names(dashboard))
    if args.source is None and args.metrics is None:
        print("\n".join(used))
        return 0
    if args.source is not None:
        names, aggregated = names_in_source(args.source)
        against = args.source
    else:
        names, aggregated = names_in_exposition(read(args.metrics))
        against = args.metrics
    missing = [n for n in used if not present(n, names, aggregated)]
    for name in missing:
        print(f"missing: {name} (used by the dashboard, not in {against})", file=sys.stderr)
    print(f"{len(used)} metric names used, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
