"""Regenerate the gallery: run the examples, then shrink chosen figures into docs/gallery/.

``python examples/make_gallery.py`` (or ``make gallery``). Each PNG is downscaled and reduced to a
256-colour palette so that it stays under 150 kB.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

from control_dl.result import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
#: gallery file -> (example, figure it writes)
GALLERY = {
    "ring_boundaries.png": ("ring_dimensions", "boundaries.png"),
    "ring_layers_d3.png": ("ring_dimensions", "layers_d3.png"),
    "spiral_layers.png": ("spiral", "layers.png"),
    "regularisation.png": ("regularisation", "regularisation.png"),
    "square_1d.png": ("square_1d", "square_1d.png"),
    "morse.png": ("morse", "morse.png"),
    "turnpike.png": ("turnpike", "turnpike.png"),
    "invertible.png": ("invertible", "invertible.png"),
    "demo_compare.png": ("demo", "ring-3d/compare.png"),
    "initialisations.png": ("initialisations", "initialisations.png"),
    "turnpike_kappa.png": ("turnpike_claim", "turnpike_kappa.png"),
    "training_dynamics.png": ("training_dynamics", "heatmaps.png"),
    "mlp_vs_resnet.png": ("mlp_vs_resnet", "singular_values.png"),
    "emsa_sin.png": ("emsa_sin", "convergence.png"),
}
MAX_BYTES = 150_000


def shrink(source: Path, width: int = 1000) -> bytes:
    """The PNG at ``source``, at most ``width`` pixels wide, as a 256-colour palette PNG.

    Parameters
    ----------
    source : Path
        A PNG.
    width : int
        Maximum width in pixels.

    Returns
    -------
    bytes
        The compressed PNG.
    """
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default=str(ROOT / "runs" / "gallery"), help="where the examples write")
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"), help="gallery folder")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    for example in sorted({example for example, _ in GALLERY.values()}):
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / f"{example}.py"), "--out", str(runs / example)], check=True
        )
    for name, (example, figure) in GALLERY.items():
        for width in (1000, 800, 600):
            data = shrink(runs / example / figure, width)
            if len(data) < MAX_BYTES:
                break
        atomic_write_bytes(out / name, data)
        print(f"{out / name}: {len(data) / 1000:.0f} kB")


if __name__ == "__main__":
    main()
