"""Regenerate the numbers in README.md's tables from the committed results files (``make readme-tables``).

A generated block in README.md sits between two marker comments::

    <!-- generated:leaderboard_standard_digits -->
    | model | sampler | FID ↓ | ...
    <!-- /generated -->

and is replaced by ``BLOCKS[name]()``; everything outside the markers is left as it is.  Run
``python tools/readme_tables.py`` to rewrite README.md, ``--check`` to exit 1 (naming the blocks) when README.md
and the results files disagree; ``tests/test_readme_tables.py`` runs the check.

``json_schemas``: the keys of the ``--json`` documents (``genbench.jsonout``); ``minimal_plugin``: the files of
``examples/minimal_plugin``.  ``leaderboard_standard_digits``: the README's digest of ``bench/results/leaderboard_standard_digits.md`` (the
report's results.md of the standard leaderboard): one row per quality-table row, cells copied from results.md
(FID and FID / floor with their intervals; precision, recall, confident share, images/s and training seconds as
their means; every likelihood estimate of the model with its interval and kind; the memorisation table's share
of samples closer to the training set than the 5th percentile of test images, classifier features, with its
interval), and FID / floor from the results.md column when it has one, else the model's mean FID over the mean
real-data floor from the tidy rows of
``leaderboard_standard_digits.csv``.  ``leaderboard_standard_fashion``: the same digest of the Fashion-MNIST
standard leaderboard.  ``main_job``: the same digest of ``bench/results/main_job.md`` (the cells
``make run`` runs, from ``bench/grids/main_job.toml``), its ratios from that file's JSON rows.
``precision_digits``: the tables of ``bench/results/precision_digits.md`` (``bench/precision.py``) as they are.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"
BLOCK = re.compile(r"(<!-- generated:([\w.-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)
OPEN = re.compile(r"<!-- generated:([\w.-]+) -->")
FLOOR = "real data (floor)"
MISSING = "—"


class ReadmeError(ValueError):
    """README.md's markers are broken or name no known block; one line."""


# ------------------------------------------------------------------------------------------ results.md as tables
def _unescape(text: str) -> str:
    text = text.strip()
    for mark in ("**", "*"):
        if len(text) > 2 * len(mark) and text.startswith(mark) and text.endswith(mark):
            text = text[len(mark):-len(mark)]
            break
    return re.sub(r"\\(.)", r"\1", text).replace("&lt;", "<").replace("&gt;", ">")


def _cells(line: str) -> list[str]:
    body = line.strip()[1:-1]
    return [_unescape(c) for c in re.split(r"(?<!\\)\|", body)]


def markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """``#### Title`` -> that pipe table's rows as {header: cell text (marks and escapes removed)}."""
    tables: dict[str, list[dict[str, str]]] = {}
    title, header = None, None
    for line in text.splitlines():
        if line.startswith("#### "):
            title, header = line[5:].strip(), None
        elif title and line.startswith("|"):
            if header is None:
                header = _cells(line)
            elif not set(line.replace("|", "").strip()) <= set("-: "):
                tables.setdefault(title, []).append(dict(zip(header, _cells(line))))
        elif line.strip() and header is not None:
            title, header = None, None
    return tables


def mean_of(text: str) -> str:
    """"0.924 ± 0.024" -> "0.924" (the mean as results.md printed it)."""
    return text.split(" ± ")[0].strip()


def _model_of(label: str) -> str:
    """The model of a results.md row label: without its role ("(baseline)", "(external)") and the tag of a row kept
    apart ("(other classifier weights)": its likelihood and cost do not depend on the extractor)."""
    return re.sub(r"( \([^()]*\))+$", "", label)


def _is_floor(label: str) -> bool:
    """The real-data floor row, or one of its per-setting rows ("real data (floor, other classifier weights)")."""
    return label == FLOOR or label.startswith(FLOOR[:-1] + ", ")


def _fid_over_floor(name: str) -> dict[tuple[str, str], float]:
    """(model, sampler) -> mean FID over its seeds / mean real-data floor (the first extractor's), from the tidy
    rows of ``bench/results/<name>.csv`` when there is one, else of ``<name>.json``."""
    import json

    import pandas as pd

    csv = RESULTS / f"{name}.csv"
    if csv.exists():
        df = pd.read_csv(csv, keep_default_na=False, na_values={"value": [""]})
    else:
        df = pd.DataFrame(json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))["rows"])
    fid = df[df["metric"] == "fid"]
    extractor = sorted(fid["extractor"].unique())[0]
    floor = df[(df["metric"] == "fid_floor") & (df["extractor"] == extractor)]["value"].mean()
    means = fid[fid["extractor"] == extractor].groupby(["model", "sampler"])["value"].mean()
    return {(str(m), str(s)): float(v) / float(floor) for (m, s), v in means.items()}


def _ratio_text(value: float) -> str:
    return f"{value:.3g}"


# ------------------------------------------------------------------------------------------ the blocks
def leaderboard_table(name: str) -> str:
    """The README's digest of ``bench/results/<name>.md`` (a grid's results.md, see the module docstring)."""
    tables = markdown_tables((RESULTS / f"{name}.md").read_text(encoding="utf-8"))
    def table(title: str) -> list[dict[str, str]]:
        # results.md titles its tables "Sample quality" or, since the per-setting boards, "Sample quality (preset
        # quick, n=1000)": the first table whose title starts with the name
        return next(rows for name, rows in tables.items() if name == title or name.startswith(title + " ("))

    quality, likelihood, cost = table("Sample quality"), table("Likelihood"), table("Cost")
    try:
        memorisation = table("Memorisation")
    except StopIteration:  # results.md from before the memorisation metric
        memorisation = []
    near_column = next((h for h in (memorisation[0] if memorisation else {})
                        if h.startswith("closer to train than test p5") and h.endswith("[classifier]")), None)
    near = {(_model_of(r["model"]), r["sampler"]): r[near_column] for r in memorisation} if near_column else {}
    ratio_column = next((h for h in quality[0] if h.startswith("FID / floor")), None)
    ratios = None if ratio_column else _fid_over_floor(name)
    bits = {_model_of(r["model"]): ", ".join(f"{v} ({h[len('bits/dim ('):h.index(')')]})" for h, v in r.items()
                                            if h.startswith("bits/dim (") and v != MISSING) or MISSING
            for r in likelihood}
    costs = {(_model_of(r["model"]), r["sampler"]): r for r in cost}
    header = ["model", "sampler", "FID ↓", "FID / floor ↓", "precision ↑", "recall ↑", "confident share ↑",
              "bits/dim ↓ (kind)", "closer than test p5 (0.05)", "images/s", "NFE", "FLOPs/image", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "--:|" * (len(header) - 2)]
    seen: set[str] = set()
    for r in quality:
        label, sampler, model = r["model"], r["sampler"], _model_of(r["model"])
        first = model not in seen
        seen.add(model)
        floor = _is_floor(label)
        if floor:
            ratio = "1"
        elif ratio_column:
            ratio = r[ratio_column]  # with its interval
        else:
            ratio = _ratio_text(ratios[(model, sampler)])
        c = costs.get((model, sampler), {})
        row = [label, sampler if not floor else "", r["FID ↓"], ratio, mean_of(r["precision ↑"]),
               mean_of(r["recall ↑"]), mean_of(r["confident share ↑"]),
               (bits.get(model, "") if first and not floor else ""), near.get((model, sampler), "") if not floor else "",
               mean_of(c.get("images/s ↑", "")), c.get("NFE ↓", ""),
               c.get("FLOPs/image ↓", ""), (mean_of(c.get("train s ↓", "")) if first else "")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_standard_digits() -> str:
    """The README's standard-leaderboard table (``bench/grids/leaderboard_standard_digits.toml``)."""
    return leaderboard_table("leaderboard_standard_digits")


def leaderboard_standard_fashion() -> str:
    """The README's Fashion-MNIST standard leaderboard (``bench/grids/leaderboard_standard_fashion.toml``)."""
    return leaderboard_table("leaderboard_standard_fashion")


def main_job() -> str:
    """The README's main-job table (``bench/grids/main_job.toml``: the cells ``make run`` runs)."""
    return leaderboard_table("main_job")


def json_schemas() -> str:
    """The keys of every ``--json`` document, from ``genbench.jsonout`` (what the tests check the output against)."""
    from genbench import jsonout

    def table(keys: dict[str, str]) -> list[str]:
        return ["| key | meaning |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in keys.items()]

    parts = [("`genbench list --json` (standard output)", jsonout.LIST_KEYS),
             ("each entry of `models`", jsonout.MODEL_KEYS), ("each entry of `datasets`", jsonout.DATASET_KEYS),
             ("each entry of `metrics`, `extractors`, `loggers`", jsonout.ENTRY_KEYS),
             ("`genbench run --json FILE|-`", jsonout.RUN_KEYS), ("each entry of `cells`", jsonout.CELL_KEYS),
             ("`genbench fid A B --json FILE|-`: a list of", jsonout.FID_ROW_KEYS)]
    lines: list[str] = []
    for title, keys in parts:
        lines += [f"{title}:", "", *table(keys), ""]
    lines.append("Each entry of `rows` is a tidy row with the columns listed under \"What a run does\".")
    return "\n".join(lines) + "\n"


def minimal_plugin() -> str:
    """The complete plugin in examples/minimal_plugin (the one tests/test_cli_plugin.py installs and runs)."""
    folder = ROOT / "examples" / "minimal_plugin"
    out = []
    for name, lang in (("pyproject.toml", "toml"), ("genbench_mine/__init__.py", "python")):
        out += [f"```{lang}", f"# {name}", (folder / name).read_text(encoding="utf-8").rstrip(), "```", ""]
    return "\n".join(out)


def precision_digits() -> str:
    """The tables of ``bench/results/precision_digits.md`` (``bench/precision.py``: bf16 against fp32 per family)
    as they are, and its line naming the families not yet compared."""
    text = (RESULTS / "precision_digits.md").read_text(encoding="utf-8")
    out, previous_was_table = [], False
    for line in text.splitlines():
        is_table = line.startswith("|")
        if is_table:
            if out and not previous_was_table:
                out.append("")
            out.append(line)
        elif line.startswith("Not in both grids yet"):
            out += ["", line]
        previous_was_table = is_table
    return "\n".join(out) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "leaderboard_standard_digits": leaderboard_standard_digits,
    "leaderboard_standard_fashion": leaderboard_standard_fashion,
    "main_job": main_job,
    "precision_digits": precision_digits,
    "json_schemas": json_schemas,
    "minimal_plugin": minimal_plugin,
}
#: blocks README.md must have (others are regenerated where the README has their markers)
REQUIRED = ("leaderboard_standard_digits", "leaderboard_standard_fashion", "main_job")


# ------------------------------------------------------------------------------------------ README.md
def regenerated(text: str, blocks: dict[str, Callable[[], str]] | None = None) -> str:
    """``text`` with every generated block rewritten (raises ReadmeError on broken or unknown markers)."""
    blocks = BLOCKS if blocks is None else blocks
    opened = OPEN.findall(text)
    closed = text.count("<!-- /generated -->")
    found = [m.group(2) for m in BLOCK.finditer(text)]
    if len(opened) != closed or len(found) != len(opened):
        raise ReadmeError(f"README.md has {len(opened)} '<!-- generated:NAME -->' and {closed} '<!-- /generated -->' "
                          "markers; each block opens and closes once, without nesting")
    for name in found:
        if name not in blocks:
            raise ReadmeError(f"README.md has a generated block {name!r} that tools/readme_tables.py does not know; "
                              f"known: {', '.join(sorted(blocks))}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group(2)]() + m.group(4), text)


def stale_blocks(text: str) -> list[str]:
    """Names of the generated blocks whose text differs from what the results files give, and required blocks
    that are missing."""
    fresh = {m.group(2): m.group(3) for m in BLOCK.finditer(regenerated(text))}
    now = {m.group(2): m.group(3) for m in BLOCK.finditer(text)}
    return [n for n in REQUIRED if n not in now] + [n for n in now if now[n] != fresh[n]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md disagrees with the results files")
    ap.add_argument("--readme", default=str(README))
    args = ap.parse_args(argv)
    path = Path(args.readme)
    text = path.read_text(encoding="utf-8")
    try:
        if args.check:
            stale = stale_blocks(text)
            if stale:
                print(f"{path}: out of date: {', '.join(stale)}; run `make readme-tables`", file=sys.stderr)
                return 1
            return 0
        new = regenerated(text)
    except ReadmeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"rewrote the generated blocks of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
