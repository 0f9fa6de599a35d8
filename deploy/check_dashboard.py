#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus rules of deploy/ (docs/deployment.md).

usage: check_dashboard.py DASHBOARD.json RULES.yml [--scrape METRICS.txt] [--pending NAME,...]

- The dashboard's structure, as Grafana's dashboard JSON model (schemaVersion 37) defines it:
  title, uid, panels with unique ids and a gridPos inside the 24 columns, every query panel with
  a Prometheus datasource declared in __inputs and targets with a refId and an expr, every
  $variable defined under templating. (Grafana's own schema is not packaged for Debian.)
- With --scrape, a page of a live aiqosd's /metrics: every metric that a dashboard query, a
  template query or a rule names must be on it (or be a recording rule of RULES). --pending
  names metrics that another branch adds; they are listed, not failed.
Prints PASS/FAIL lines; exit 0 when nothing failed."""
import argparse
import json
import re
import sys

import yaml

KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring",
            "group_left", "group_right"}
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "bargauge", "text", "heatmap"}
fails = 0


def check(ok, what):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        fails += 1


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)                       # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                      # range selectors, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\w+", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                     # Grafana variables
    e = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", " ", e)     # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0) in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def dashboard_queries(d):
    """(where, expr) of every Prometheus query: panel targets, then template queries."""
    out = []
    for p in d.get("panels", []):
        for t in p.get("targets", []):
            out.append((f'panel "{p.get("title")}" {t.get("refId")}', t.get("expr", "")))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$", q)
        out.append((f"variable ${v.get('name')}", m.group(1) if m else q))
    return out


def check_structure(d):
    check(isinstance(d.get("title"), str) and d["title"], "dashboard has a title")
    check(isinstance(d.get("uid"), str) and 0 < len(d["uid"]) <= 40, "uid of 1..40 characters")
    check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 30, "schemaVersion >= 30")
    inputs = {i.get("name") for i in d.get("__inputs", []) if i.get("type") == "datasource"}
    variables = {v.get("name") for v in d.get("templating", {}).get("list", [])} | {"__rate_interval", "__interval", "__all"}
    panels = d.get("panels")
    check(isinstance(panels, list) and panels, "panels is a non-empty list")
    ids, bad = set(), []
    for p in panels or []:
        where = f'panel {p.get("id")} "{p.get("title")}"'
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            bad.append(f"{where}: id missing or repeated")
        ids.add(p.get("id"))
        if p.get("type") not in PANEL_TYPES:
            bad.append(f"{where}: unknown type {p.get('type')}")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] < 0 or g["w"] <= 0 or g["h"] <= 0 \
                or g["x"] + g["w"] > 24:
            bad.append(f"{where}: gridPos {g} outside the 24 columns")
        if p.get("type") == "row":
            continue
        ds = p.get("datasource", {})
        if ds.get("type") != "prometheus" or ds.get("uid", "").strip("${}") not in inputs:
            bad.append(f"{where}: datasource {ds} is not a declared Prometheus input")
        targets = p.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or not all(refs):
            bad.append(f"{where}: targets need unique refIds")
        for t in targets:
            if not t.get("expr"):
                bad.append(f"{where}: target {t.get('refId')} has no expr")
            for var in re.findall(r"\$\{?(\w+)\}?", t.get("expr", "")):
                if var not in variables:
                    bad.append(f"{where}: ${var} is not a template variable")
    for b in bad:
        check(False, b)
    check(not bad, f"{len(panels or [])} panels: ids, types, grid, datasources, targets, variables")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dashboard")
    ap.add_argument("rules")
    ap.add_argument("--scrape")
    ap.add_argument("--pending", default="")
    a = ap.parse_args()
    with open(a.dashboard) as f:
        d = json.load(f)
    check(True, f"{a.dashboard} is JSON")
    check_structure(d)
    with open(a.rules) as f:
        rules = yaml.safe_load(f)
    queries = dashboard_queries(d)
    recorded = set()
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            queries.append((f'rule {r.get("alert") or r.get("record")}', r["expr"]))
            if "record" in r:
                recorded.add(r["record"])
    if a.scrape:
        with open(a.scrape) as f:
            exported = {m.group(1) for m in re.finditer(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", f.read(), re.M)}
        pending = {p for p in a.pending.split(",") if p}
        for where, expr in queries:
            names = metric_names(expr)
            missing = names - exported - recorded - pending
            check(not missing and names, f"{where}: {', '.join(sorted(names)) or 'no metric'}"
                  + (f" -- not exported: {', '.join(sorted(missing))}" if missing else ""))
            for p in sorted(names & pending):
                print(f"INFO: {where}: {p} is pending (added by another branch; not on this scrape)")
    print("RESULT: " + ("PASS" if fails == 0 else f"FAIL ({fails})"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
