"""Error bands from silicon_sample.csv for the efficiency-table entries MLPerf does not exercise.

    python benchmarks/bench_silicon_sample.py --json silicon.json
    python benchmarks/silicon_bands.py silicon.json [--write]

AIConfigurator's ``silicon_sample.csv`` is a validation set: nothing is fitted on it. Its
end-to-end rows (vLLM, SGLang, TensorRT-LLM on six NVIDIA systems) measure how far each entry's
predictions are from real deployments. Per entry (the ``efficiency_entry`` each simulated row
used), the band is the median and p90 absolute % error of output throughput per GPU, the figure
comparable to the MLPerf bands (Offline throughput, Server capacity); TTFT and TPOT errors are
printed beside it. ``--write`` stores the band in ``conf/tables/engine_efficiency.yaml`` for
entries whose band is empty or was measured here before; MLPerf bands are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from hermes_opt.calibration import engine_fit
from hermes_opt.compose import efficiency

SOURCE = "silicon_sample.csv (aiconfigurator-core 0.12.0)"


def by_entry(rows: list[dict]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in rows:
        if r.get("reason") or r.get("mode") != "agg" or "+" in (r.get("efficiency_entry") or "+"):
            continue
        figures = out.setdefault(r["efficiency_entry"], {"tput": [], "ttft": [], "tpot": []})
        figures["tput"].append((r["throughput_per_gpu"], r["silicon_tput_per_gpu"]))
        figures["ttft"].append((r["ttft_ms"], r["silicon_ttft_ms"]))
        figures["tpot"].append((r["tpot_ms"], r["silicon_tpot_ms"]))
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", type=Path, help="bench_silicon_sample.py --json output")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    rows = json.loads(args.json.read_text())["rows"]
    bands = {}
    for entry, figures in sorted(by_entry(rows).items()):
        band = engine_fit.band(figures["tput"], f"{SOURCE}: output tokens/s per GPU of agg rows")
        bands[entry] = band
        extra = {k: engine_fit.band(v, "").get("median_pct") for k, v in figures.items()}
        print(f"{entry:28s} n={band['n']:4d} throughput median {band['median_pct']} % p90 "
              f"{band['p90_pct']} %; TTFT median {extra['ttft']} %, TPOT median {extra['tpot']} %")
    if args.write:
        write(bands)


def write(bands: dict[str, dict]) -> None:
    path = efficiency.TABLE_PATH
    text = path.read_text()
    data = yaml.safe_load(text)
    updated = 0
    for entry in data["entries"]:
        key = "/".join(str(entry[k]) for k in ("engine", "stack", "generation", "precision"))
        old = entry.get("band") or {}
        if key in bands and (not old or str(old.get("validated_on", "")).startswith(SOURCE)):
            entry["band"] = bands[key]
            updated += 1
    head = text[:text.index("entries:")]
    path.write_text(head + yaml.safe_dump({"entries": data["entries"]}, sort_keys=False,
                                          width=100))
    print(f"wrote {updated} silicon bands to {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])


