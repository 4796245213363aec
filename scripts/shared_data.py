"""Where the benchmark images are: ``../shared/data`` beside the repository (the checkout's
sibling folder, as on every machine of this project), or ``$NM_DATA`` where set."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("NM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
KODAK = DATA / "kodak"
