"""Fetch the face_recognition 1.3.0 sdist's test portraits into a cache folder (not committed).

    python scripts/fetch_test_photos.py [DEST]     (default: cache/test-photos)

Uses pip (the ordinary registry client) to download the sdist only (``--no-binary :all:
--no-deps``: the wheel has no test images), then extracts ``tests/test_images/{obama,obama2,
obama3,biden}.jpg`` and checks their sha256 (tests/photos.py). Idempotent: does nothing when all
four are present. Exit 1 with a message if the download fails (offline machine): the tests that
need the photos then skip.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from photos import PHOTOS  # noqa: E402

SDIST = "face-recognition==1.3.0"


def main(argv: list[str]) -> int:
    dest = Path(argv[0]) if argv else ROOT / "cache" / "test-photos"
    ok = lambda p: p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == PHOTOS[p.name]
    if all(ok(dest / n) for n in PHOTOS):
        return 0
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frbench-photos-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
               "-d", tmp, SDIST]
        if subprocess.run(cmd).returncode != 0:
            print(f"fetch_test_photos: pip could not download {SDIST}; tests needing the photos "
                  "will skip", file=sys.stderr)
            return 1
        (tgz,) = Path(tmp).glob("face_recognition-*.tar.gz")
        with tarfile.open(tgz) as tf:
            for m in tf.getmembers():
                name = Path(m.name).name
                if name in PHOTOS and m.name.endswith(f"tests/test_images/{name}") and m.isfile():
                    data = tf.extractfile(m).read()
                    if hashlib.sha256(data).hexdigest() != PHOTOS[name]:
                        print(f"fetch_test_photos: {name}: unexpected sha256", file=sys.stderr)
                        return 1
                    part = dest / f".{name}.tmp"
                    part.write_bytes(data)
                    part.replace(dest / name)
    missing = [n for n in PHOTOS if not ok(dest / n)]
    if missing:
        print(f"fetch_test_photos: not in the sdist: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"fetch_test_photos: {len(PHOTOS)} photos in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
