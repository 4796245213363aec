"""The import rules of docs/ARCHITECTURE.md: layers, no circle, a light decode path.

The module graph is read from the source with ``ast`` (imports inside functions count too),
so a rule is checked whether or not the code path runs here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

import neural_memory as nm
from neural_memory.container import Header, Mode, pack

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "neural_memory"

#: Layer of each part of the package (docs/ARCHITECTURE.md); a module may import its own
#: layer or lower ones, never a higher one. "" is the package's ``__init__``.
LAYERS = {
    "errors": 0,
    "options": 0,
    "metrics": 0,
    "atomic": 0,
    "samples": 0,
    "torch_threads": 0,  # torch imported on first use
    "memory_budget": 0,
    "native": 1,  # the binding of the C core (native/)
    "container": 1,
    "entropy": 1,
    "images": 1,
    "png": 1,  # 16-bit colour PNG (images.py's reader and writer)
    "lossless": 2,
    "lossy.decoding": 2,
    "lossy": 2,  # the package docstring only
    "lossy.encoding": 3,
    "api": 4,
    "": 5,
    "progress": 5,
    "pillow_plugin": 5,
    "batch": 5,
    "reconstruct": 5,
    "demo": 6,
    "bench": 6,
    "cli": 7,
    "__main__": 7,
}

#: Parts a decoder runs through: none of them may import these, even inside a function.
DECODE_PATH = ("errors", "options", "metrics", "atomic", "container", "entropy", "images", "png")
DECODE_PATH += ("native", "lossless", "lossy.decoding")
HEAVY = ("torch", "scipy", "matplotlib", "cv2", "skimage")


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _bound_names(module: str) -> set[str]:
    """Names a package's ``__init__`` binds at its top level."""
    names: set[str] = set()
    for node in ast.parse(MODULES[module][0].read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level third-party names) that ``name`` imports."""
    path, is_package = MODULES[name]
    ours: set[str] = set()
    others: set[str] = set()

    def add(target: str, names: list[str]) -> None:
        if not target.startswith("neural_memory"):
            others.add(target.split(".")[0])
            return
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        if subs:
            ours.update(subs)
        elif target in MODULES and (not names or "*" in names or set(names) & _bound_names(target)):
            ours.add(target)
        # else: a compiled submodule (e.g. neural_memory._native), which imports nothing

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            add(target, [alias.name for alias in node.names])
    ours.discard(name)
    return ours, others


GRAPH = {name: _imports(name) for name in MODULES}


def _part(module: str) -> str:
    """The entry of LAYERS a module belongs to (its longest matching prefix)."""
    rest = module.removeprefix("neural_memory").lstrip(".")
    while rest not in LAYERS:
        if "." not in rest:
            raise AssertionError(
                f"{module} is in no layer: add it to LAYERS here and to docs/ARCHITECTURE.md"
            )
        rest = rest.rsplit(".", 1)[0]
    return rest


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _part(name)


def test_no_upward_imports() -> None:
    upward = [
        f"{name} (layer {LAYERS[_part(name)]}) imports {target} (layer {LAYERS[_part(target)]})"
        for name, (ours, _) in GRAPH.items()
        for target in ours
        if LAYERS[_part(target)] > LAYERS[_part(name)]
    ]
    assert not upward, "\n".join(upward)


def test_decoding_half_of_lossy_never_imports_the_encoding_half() -> None:
    for name, (ours, _) in GRAPH.items():
        if _part(name) == "lossy.decoding":
            assert not [t for t in ours if _part(t) == "lossy.encoding"], name


def test_import_graph_has_no_circle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node][0]):
            if state.get(nxt) == 1:
                circle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_decode_path_imports_no_heavy_library() -> None:
    for name, (_, others) in GRAPH.items():
        if _part(name) in DECODE_PATH:
            assert not others & set(HEAVY), f"{name} imports {sorted(others & set(HEAVY))}"


def test_decode_command_runs_without_torch_scipy_matplotlib(tmp_path: Path) -> None:
    """``neural-memory decode`` of a lossy and a lossless file, with the heavy libraries made
    unimportable: it still works, and none of them (nor bench, nor reconstruct) is loaded.
    (numba itself tries ``import scipy`` for a version check and goes on without it.)"""
    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)[:, :, None]
    (tmp_path / "ll.nmem").write_bytes(nm.encode(gray, mode="lossless"))
    golden = Path(__file__).parent / "golden" / "lossy_kodim23_32x32.bin"
    header = Header(Mode.LOSSY, 32, 32, 3)
    (tmp_path / "ly.nmem").write_bytes(pack(header, {"LOSY": golden.read_bytes()}))
    code = f"""
import importlib.abc, sys
HEAVY = {HEAVY!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
from neural_memory.cli import main
for stem in ("ll", "ly"):
    src = {str(tmp_path)!r} + "/" + stem
    assert main(["decode", src + ".nmem", "-o", src + ".png", "--quiet"]) == 0
loaded = [m for m in sys.modules if m.split(".")[0] in HEAVY
          or m.startswith(("neural_memory.bench", "neural_memory.reconstruct",
                           "neural_memory.lossy.encoding."))]
assert not loaded, loaded
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ll.png").is_file() and (tmp_path / "ly.png").is_file()


def test_import_neural_memory_changes_no_global_state(tmp_path: Path) -> None:
    code = """
from PIL import Image
Image.init()
before = (Image.MAX_IMAGE_PIXELS, dict(Image.OPEN), dict(Image.SAVE))
import numpy as np, neural_memory as nm
path = "{path}"
Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
nm.load_image(path)
after = (Image.MAX_IMAGE_PIXELS, dict(Image.OPEN), dict(Image.SAVE))
assert "NMEM" not in Image.OPEN and before == after, (before[0], after[0])
nm.register()
assert "NMEM" in Image.OPEN
"""
    result = subprocess.run(
        [sys.executable, "-c", code.format(path=tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_base_install_needs_neither_numba_nor_imagecodecs(tmp_path: Path) -> None:
    """What ``pip install .`` promises (decode every mode, code lossless and near-lossless,
    16-bit colour PNG in and out) with numba, llvmlite and imagecodecs unimportable, as in a
    base install: it works through the CLI and the API, and none of them is loaded."""
    rng = np.random.default_rng(0)
    deep = (rng.integers(0, 4096, (9, 11, 3)) * 16).astype(np.uint16)
    golden = Path(__file__).parent / "golden" / "lossy_kodim23_32x32.bin"
    (tmp_path / "ly.nmem").write_bytes(
        pack(Header(Mode.LOSSY, 32, 32, 3), {"LOSY": golden.read_bytes()})
    )
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numba", "llvmlite", "imagecodecs"):
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
import neural_memory as nm
from neural_memory.cli import main
d = {str(tmp_path)!r} + "/"
deep = np.array({deep.tolist()!r}, dtype=np.uint16)
nm.save_image(d + "deep.png", deep)
for flag in (["--lossless"], ["--near-lossless", "3"]):
    assert main(["encode", d + "deep.png", *flag, "-o", d + "x.nmem", "--quiet", "--force"]) == 0
    assert main(["decode", d + "x.nmem", "-o", d + "back.png", "--quiet", "--force"]) == 0
    error = np.abs(nm.load_image(d + "back.png").astype(int) - deep).max()
    assert error <= (0 if flag == ["--lossless"] else 3), (flag, error)
assert main(["decode", d + "ly.nmem", "-o", d + "ly.png", "--quiet"]) == 0
assert main(["info", d + "ly.nmem", "--json"]) == 0
assert nm.decode(nm.encode(deep[:, :, :1], mode="lossless")).tolist() == deep[:, :, :1].tolist()
loaded = [m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite", "imagecodecs")]
assert not loaded, loaded
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
