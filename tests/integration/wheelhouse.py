"""Install probe as a user would: the built wheel alone in a fresh virtualenv (what pipx does)."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["ROOT", "install_wheel"]


def install_wheel(tmp: Path) -> Path:
    """Build the wheel of this checkout and install it, alone, in a new virtualenv under
    ``tmp``; returns the virtualenv. Its dependencies are borrowed from the test environment by
    a plain path entry (offline), which does not bring the editable checkout along."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("censorship_probe-*.whl")
    env_dir = tmp / "venv"
    # No pip of its own (ensurepip took ~4 s of CPU): the test environment's pip installs the
    # wheel into it (--python), as it would into any interpreter.
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)  # fmt: skip
    return env_dir
