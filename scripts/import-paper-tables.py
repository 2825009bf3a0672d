#!/usr/bin/env python3
"""Converts ../shared/data/paper-tables.csv (published numbers with their sources) into dmeval's own
format, reports/published/paper-results.json: one JSON object per published value, numbers typed
(steps, bits and sample counts as integers or null, values as numbers). Run by hand when the CSV
changes; CI never runs it (the JSON is committed)."""
import csv, json, sys, pathlib

def as_int(s):
    s = (s or "").strip()
    try:
        return int(s)
    except ValueError:
        try:
            f = float(s)
            return int(f) if f.is_integer() else None
        except ValueError:
            return None

def as_float(s):
    try:
        return float((s or "").strip())
    except ValueError:
        return None

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/paper-tables.csv")
dst = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "reports/published/paper-results.json")
rows = []
skipped = 0
for r in csv.DictReader(src.open(newline="", encoding="utf-8")):
    value = as_float(r["value"])
    if value is None:
        skipped += 1
        continue
    rows.append({
        "paper": r["paper"], "table": r["table"], "dataset": r["dataset"], "model": r["model"],
        "sampler": r["sampler"] or None, "steps": as_int(r["steps"]),
        "w_bits": as_int(r["wbits"]), "a_bits": as_int(r["abits"]), "method": r["method"],
        "metric": r["metric"], "value": value, "n_samples": as_int(r["n_samples"]),
        "fid_tool": r["fid_tool"] or None, "note": r["note"] or None,
    })
dst.write_text(json.dumps({"source": "shared/data/paper-tables.csv", "rows": rows}, indent=1, ensure_ascii=False) + "\n",
               encoding="utf-8")
print(f"{len(rows)} published values written to {dst}; {skipped} rows without a numeric value skipped")
