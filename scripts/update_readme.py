"""Regenerate the README's result tables from zoo/*/metrics.json and benchmarks/results/*.json.

    .venv/bin/python scripts/update_readme.py

Tables sit between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers; nothing else changes.
The zoo tables are built in scripts/readme_zoo_tables.py, the benchmark tables in
scripts/readme_benchmark_tables.py (the image speed table in scripts/readme_image_speed_table.py);
this module imports every table it fills, so `runpy.run_path("scripts/update_readme.py")
["speed_table"]` (docs/) finds them here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # runpy.run_path (docs/) does not put scripts/ on sys.path

from readme_benchmark_tables import (  # noqa: E402
    compression_table,
    continuous_table,
    ensemble_curve_table,
    generative_classification_table,
    ood_table,
    pixeldefend_table,
    speed_table,
    text_speed_table,
    time_to_quality_table,
)
from readme_image_speed_table import image_speed_table  # noqa: E402
from readme_zoo_tables import (  # noqa: E402
    image_samples_tables,
    other_image_zoo_table,
    text_zoo_table,
    zoo_table,
)


def replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md lacks the {name} markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = replace(text, "zoo", zoo_table())
    text = replace(text, "ensemble-curve", ensemble_curve_table())
    text = replace(text, "speed", speed_table())
    text = replace(text, "continuous", continuous_table())
    text = replace(text, "image-speed", image_speed_table())
    text = replace(text, "image-samples", image_samples_tables())
    if "<!-- image-zoo:start -->" in text:
        text = replace(text, "image-zoo", other_image_zoo_table())
    if "<!-- ood:start -->" in text:
        text = replace(text, "ood", ood_table())
        text = replace(text, "pixeldefend", "```text\n" + pixeldefend_table() + "\n```")
        text = replace(text, "generative-classification", generative_classification_table())
    if "<!-- compression:start -->" in text:
        text = replace(text, "compression", compression_table())
    if "<!-- text-zoo:start -->" in text:
        text = replace(text, "text-zoo", text_zoo_table())
        text = replace(text, "text-speed", text_speed_table())
    if "<!-- time-to-quality:start -->" in text:
        text = replace(text, "time-to-quality", time_to_quality_table())
    readme.write_text(text)


if __name__ == "__main__":
    main()
