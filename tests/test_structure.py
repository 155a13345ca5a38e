"""vitlib's shape, as CONTRIBUTING.md describes it: the imports between its parts are the arrows CONTRIBUTING.md draws
(read from the code, not run), with no cycle; every module imports alone; only the speed package reaches into Keras'
internals; no function is over 60 lines; ``ls vitlib`` stays short; every module has its test file."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VITLIB = ROOT / "vitlib"
CORE = ("_checks", "_notebook", "patches", "patch_embedding", "position_embedding", "attention", "encoder", "model",
        "costs")  # reading order

pytestmark = pytest.mark.backend_independent


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(VITLIB.rglob("*.py"))}


def imported(module):
    """The vitlib modules ``module`` imports, at its top or inside a function (both are arrows a reader follows)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name not in MODULES and "." in name:  # `from vitlib.x import name`: the module is vitlib.x
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module:
                found.add(name)
    return found


GRAPH = {module: imported(module) for module in MODULES}


def part(module):
    """The part of vitlib a module belongs to: the core, a sub-package, the facade or the command line."""
    name = module.split(".")[1] if "." in module else "vitlib"
    return "core" if name in CORE else name


def drawn_arrows():
    """CONTRIBUTING.md's arrows: the lines ``part -> part, part`` between its two ``arrows`` markers."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("<!-- arrows -->")[1].split("<!-- /arrows -->")[0]
    arrows = {}
    for line in block.splitlines():
        match = re.fullmatch(r"\s*(\S+)\s+->\s+(.*?)\s*", line)
        if match:
            arrows[match[1]] = set() if match[2] == "nothing" else {p.strip() for p in match[2].split(",")}
    return arrows


def test_no_import_cycle_among_vitlibs_modules():
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_the_arrows_contributing_draws_are_the_arrows_the_code_has():
    code = {}
    for module, targets in GRAPH.items():
        code.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    assert drawn_arrows() == code


def test_the_core_imports_only_what_comes_before_it_in_reading_order():
    for module, targets in GRAPH.items():
        if part(module) == "core":
            for target in targets:
                assert part(target) == "core", f"{module} imports {target}, outside the core"
                assert CORE.index(target.split(".")[1]) < CORE.index(module.split(".")[1]), f"{module} -> {target}"


# One interpreter with no vitlib module loaded (the third-party libraries are, to save their start-up) forks a child per
# module; each child imports that module alone and reports whether it could.
IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
import keras, numpy, tensorflow  # noqa: F401  (third-party start-up, paid once)
assert not any(m == "vitlib" or m.startswith("vitlib.") for m in sys.modules)
failed = []
for module in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(module)
print("failed:", " ".join(failed))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per module")
def test_every_module_imports_alone_in_a_fresh_interpreter():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    modules = [m for m in MODULES if m != "vitlib.__main__"]
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE, *modules], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0 and done.stdout.split()[-1] == "failed:" if done.stdout else False, done.stderr[-3000:]


def test_only_the_speed_package_reaches_into_keras_internals():
    import keras

    keras_private = {name for owner in (keras.layers.Layer, keras.Model, keras.optimizers.AdamW, keras.callbacks.Callback,
                                        keras.layers.LayerNormalization, keras.layers.Dense)
                     for name in dir(owner) if name.startswith("_") and not name.startswith("__")}
    found = []
    for module, path in MODULES.items():
        if part(module) == "speed":
            continue
        source = path.read_text()
        if "keras.src" in source:
            found.append(f"{module}: keras.src")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = ast.unparse(node.value)
                if base in ("self", "cls", "super()") and node.attr not in keras_private:
                    continue  # the class's own attribute
                if base not in ("self", "cls", "super()") and base.split(".")[0] not in ("keras", "model", "layer",
                                                                                         "optimizer", "vit"):
                    continue  # another library's or vitlib's own
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_no_function_in_vitlib_is_over_60_lines():
    long = [f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for module, path in MODULES.items() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60]
    assert long == []


def test_ls_vitlib_shows_the_papers_modules_and_the_machinery_in_a_few_folders():
    entries = sorted(p.name for p in VITLIB.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 19, entries  # the core's 9 modules, 7 sub-packages, the facade and the two commands
    assert {f"{m}.py" for m in CORE} <= set(entries)


# Modules tested in a file named after another: the checks' messages (test_errors), `python -m vitlib`
# (test_packaging), the speed switch (test_speed), the notebook test (test_progress, beside the live line it serves)
TESTED_ELSEWHERE = {"vitlib._checks": "test_errors.py", "vitlib.__main__": "test_packaging.py",
                    "vitlib.speed": "test_speed.py", "vitlib._notebook": "test_progress.py"}


def test_every_module_has_its_test_file():
    tests = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    missing = []
    for module, path in MODULES.items():
        if path.name == "__init__.py" and module not in TESTED_ELSEWHERE:
            continue  # a sub-package's list of its modules
        expected = TESTED_ELSEWHERE.get(module, f"test_{path.stem}.py")
        if expected not in tests:
            missing.append(f"{module}: {expected}")
    assert missing == []
