"""Writes the benchmark JPEGs: real photographs from scikit-image's bundled data, resized with
Pillow to three size classes (640x480, 1920x1080, 4000x3000) and saved as baseline JPEG,
quality 90, 4:2:0. Usage: python scripts/bench_images.py OUTDIR"""
import importlib.util
import io
import pathlib
import sys

from PIL import Image

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg"]
SIZES = [(640, 480), (1920, 1080), (4000, 3000)]


def skimage_data_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scikit-image is not installed (make venv installs it)")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "data"


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".bench")
    out.mkdir(parents=True, exist_ok=True)
    data = skimage_data_dir()
    for name in PHOTOS:
        path = data / name
        if not path.exists():
            continue
        img = Image.open(path).convert("RGB")
        for w, h in SIZES:
            buf = io.BytesIO()
            img.resize((w, h), Image.BICUBIC).save(buf, "JPEG", quality=90, subsampling=2)
            (out / f"{path.stem}_{w}x{h}.jpg").write_bytes(buf.getvalue())
    print(f"wrote {len(list(out.glob('*.jpg')))} JPEGs to {out}")


if __name__ == "__main__":
    main()
