"""What infra/check-observability checks beyond promtool: the dashboard, the alert rules'
annotations and tests, and the metric names they use. Run by that script:

    python3 infra/check-observability.py names
        the metric names the dashboard's and the rules' expressions use, one a line,
        as they spell them (a histogram's `_bucket`); Prometheus's own `up` is left out
    python3 infra/check-observability.py lint PROMQL_RULES_OUT
        the offline checks; writes the dashboard's queries to PROMQL_RULES_OUT as
        recording rules, for `promtool check rules` to parse
    python3 infra/check-observability.py exposition FILE...
        every name in use is in one of these Prometheus text expositions

A metric name in an expression is an identifier followed by `{` or `[`, or one that
starts with one of the application's prefixes (`http_`, `holds_`, ...), once strings,
label matchers and grouping labels are taken out; a function (followed by `(`) and a
keyword (`by`, `and`, `offset`, ...) never is. Exits 1 with one line per problem.
"""

import json
import re
import signal
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "ops/prometheus/alerts.yml"
ALERT_TESTS = ROOT / "ops/prometheus/alerts.test.yml"
DASHBOARD = ROOT / "ops/grafana/dashboards/ticketing.json"
DATASOURCES = ROOT / "ops/grafana/provisioning/datasources/prometheus.yml"
OPERATIONS = ROOT / "OPERATIONS.md"

DATASOURCE_UID = "prometheus"
SEVERITIES = {"critical", "warning"}
PREFIXES = re.compile(
    r"(http_|holds_|hold_|command_|payments_|refunds_|bus_|outbox_|relay_|sweeper_|projector_)"
)
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}
# Series that Prometheus makes itself: in no application's exposition.
PROMETHEUS_OWN = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Grafana's interval variables, replaced by a duration so that promtool can parse.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}

STRING = re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'" r"|`[^`]*`")
MATCHERS = re.compile(r"\{[^{}]*\}")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
IDENTIFIER = re.compile(r"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*")

problems = []


def problem(message):
    problems.append(message)


def metric_names(expr):
    """The metric names an expression uses."""
    text = STRING.sub('""', expr)
    text = MATCHERS.sub("{}", text)
    text = GROUPING.sub(r"\1 ()", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        name = match.group(0)
        if name.lower() in KEYWORDS:
            continue
        rest = text[match.end():].lstrip()
        following = rest[:1]
        if following == "(":
            continue
        if following in ("{", "[") or PREFIXES.match(name):
            names.add(name)
    return names


def load_yaml(path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        problem(f"{path.relative_to(ROOT)}: {error}")
        return None


def rules():
    document = load_yaml(ALERTS) or {}
    return [rule for group in document.get("groups") or [] for rule in group.get("rules") or []]


def dashboard_panels(dashboard):
    """Every panel, the ones inside (collapsed) rows included."""
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def load_dashboard():
    try:
        return json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as error:
        problem(f"{DASHBOARD.relative_to(ROOT)}: {error}")
        return {}


def expressions():
    """(where, expr) for every expression of the rules and the dashboard."""
    found = []
    for rule in rules():
        found.append((f"alerts.yml {rule.get('alert') or rule.get('record')}", str(rule.get("expr", ""))))
    for panel in dashboard_panels(load_dashboard()):
        for target in panel.get("targets") or []:
            if "expr" in target:
                found.append((f"ticketing.json panel {panel.get('title')!r}", target["expr"]))
    return found


def names_in_use():
    names = set()
    for _, expr in expressions():
        names |= metric_names(expr)
    return sorted(names - PROMETHEUS_OWN)


def github_anchors(markdown):
    """The anchors GitHub gives a Markdown file's headings."""
    anchors, seen = set(), {}
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def lint_rules(operations):
    anchors = github_anchors(operations)
    alerts = []
    for rule in rules():
        name = rule.get("alert")
        if not name:
            continue
        alerts.append(name)
        where = f"alerts.yml {name}"
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problem(f"{where}: severity is {severity!r}, not one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations") or {}
        for key in ("summary", "description", "runbook"):
            if not annotations.get(key):
                problem(f"{where}: no {key} annotation")
        runbook = annotations.get("runbook") or ""
        match = re.fullmatch(r"OPERATIONS\.md#([\w-]+)", runbook)
        if runbook and not match:
            problem(f"{where}: runbook {runbook!r} is not OPERATIONS.md#<anchor>")
        elif match and match.group(1) not in anchors:
            problem(f"{where}: runbook {runbook!r}: OPERATIONS.md has no heading with that anchor")
    if len(set(alerts)) != len(alerts):
        problem("alerts.yml: two alerts have the same name")

    tests = load_yaml(ALERT_TESTS) or {}
    fires, quiet = set(), set()
    for test in tests.get("tests") or []:
        for case in test.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for name in alerts:
        if name not in fires:
            problem(f"alerts.test.yml: no test in which {name} fires")
        if name not in quiet:
            problem(f"alerts.test.yml: no test in which {name} stays quiet")
    for name in (fires | quiet) - set(alerts):
        problem(f"alerts.test.yml: tests an alert that alerts.yml does not have: {name}")


def lint_dashboard(promql_rules_out):
    dashboard = load_dashboard()
    if not dashboard:
        return
    where = "ticketing.json"
    if not dashboard.get("uid"):
        problem(f"{where}: no uid")
    ids = [panel.get("id") for panel in dashboard_panels(dashboard)]
    if len(set(ids)) != len(ids):
        problem(f"{where}: panel ids are not unique")
    recording = []
    for panel in dashboard_panels(dashboard):
        if panel.get("type") == "row":
            continue
        title = panel.get("title")
        if (panel.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            problem(f"{where} panel {title!r}: its data source is not uid {DATASOURCE_UID!r}")
        if "gridPos" not in panel:
            problem(f"{where} panel {title!r}: no gridPos")
        targets = panel.get("targets") or []
        if not targets:
            problem(f"{where} panel {title!r}: no query")
        for target in targets:
            if (target.get("datasource") or {}).get("uid") != DATASOURCE_UID:
                problem(f"{where} panel {title!r} query {target.get('refId')}: its data source is not uid {DATASOURCE_UID!r}")
            expr = target.get("expr") or ""
            if not expr.strip():
                problem(f"{where} panel {title!r} query {target.get('refId')}: no expression")
                continue
            for variable, duration in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, duration)
            if "$" in expr:
                problem(f"{where} panel {title!r}: a variable promtool cannot stand in for: {expr}")
                continue
            recording.append({"record": f"dashboard:panel_{panel.get('id')}_{target.get('refId')}", "expr": expr})
    # JSON is YAML: promtool reads this as a rule file.
    Path(promql_rules_out).write_text(
        json.dumps({"groups": [{"name": "dashboard", "rules": recording}]}, indent=1)
    )

    sources = load_yaml(DATASOURCES) or {}
    uids = [source.get("uid") for source in sources.get("datasources") or []]
    if DATASOURCE_UID not in uids:
        problem(f"{DATASOURCES.relative_to(ROOT)}: no data source with uid {DATASOURCE_UID!r}")


def base_name(name):
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def lint_names(operations):
    for name in names_in_use():
        documented = [
            candidate
            for candidate in {name, base_name(name)}
            if re.search(r"`" + re.escape(candidate) + r"[`{]", operations)
        ]
        if not documented:
            problem(f"{name} is used but not documented in OPERATIONS.md (as `{base_name(name)}`)")


def exposition_names(path):
    """The series names an exposition file has, and its declared types."""
    names, types = set(), {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            declared = re.match(r"#\s+TYPE\s+(\S+)\s+(\S+)", line)
            if declared:
                types[declared.group(1)] = declared.group(2)
            continue
        sample = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if sample:
            names.add(sample.group(0))
    for name, kind in types.items():
        names.add(name)
        if kind == "counter":
            names.add(name if name.endswith("_total") else name + "_total")
        elif kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
        elif kind == "summary":
            names.update(name + suffix for suffix in ("_sum", "_count"))
    return names, types


def check_exposition(paths):
    names, types = set(), {}
    for path in paths:
        found, declared = exposition_names(Path(path))
        names |= found
        types.update(declared)
    used = names_in_use()
    for name in used:
        if name in names:
            continue
        base = base_name(name)
        if name.endswith("_bucket") and types.get(base) == "summary":
            problem(f"{name}: {base} is exported as a summary, without buckets (histogram_quantile needs them)")
        elif base in names and base != name:
            problem(f"{name}: {base} is exported, but not as a histogram")
        else:
            problem(f"{name}: not in {', '.join(str(path) for path in paths)}")
    return len(used)


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "names" and len(argv) == 2:
        print("\n".join(names_in_use()))
    elif command == "lint" and len(argv) == 3:
        operations = OPERATIONS.read_text()
        lint_rules(operations)
        lint_dashboard(argv[2])
        lint_names(operations)
        if not problems:
            print(f"  {len(rules())} alerts, {len(expressions())} expressions, {len(names_in_use())} metric names: ok")
    elif command == "exposition" and len(argv) > 2:
        count = check_exposition(argv[2:])
        if not problems:
            print(f"  all {count} metric names are exported")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for message in problems:
        print(f"  {message}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # `--names-only | head` is not an error.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main(sys.argv))
