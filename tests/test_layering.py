"""Imports only look down: every module of the package belongs to one layer, and no module imports one of
a higher layer. This list is the layer order of the project (docs/architecture.md draws it); a module
that fits no prefix fails the test, so a new module must be placed here first.

Within a layer any import is allowed. A function-local import counts the same as a top-level one: a
layer violation hidden in a function is still a dependency.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The modules at the top of the package: the ``python -m`` commands (the demo, which runs the Beam jobs
#: too, is a layer of its own) and the package itself.
ENTRY_POINTS = ("lcr_tf.train", "lcr_tf.export", "lcr_tf.predict", "lcr_tf.evaluate", "lcr_tf.convert_official",
                "lcr_tf")

#: Lowest first. Each layer is the package folders it holds (a folder covers its sub-folders); the top
#: level of ``lcr_tf`` holds only the ``python -m`` entry points.
LAYERS = (
    ("contracts", ("lcr_tf.contracts",)),
    ("poses", ("lcr_tf.poses",)),
    ("synthetic", ("lcr_tf.synthetic",)),
    ("datasets", ("lcr_tf.datasets",)),
    ("ops", ("lcr_tf.ops",)),
    ("layers", ("lcr_tf.layers",)),
    ("modeling", ("lcr_tf.modeling",)),
    ("data", ("lcr_tf.data",)),
    ("training", ("lcr_tf.training",)),
    ("postprocess", ("lcr_tf.postprocess",)),
    ("serving", ("lcr_tf.serving",)),
    ("evaluation", ("lcr_tf.evaluation",)),
    ("release", ("lcr_tf.release",)),
    ("entry points", ENTRY_POINTS),
    ("pipelines", ("beam_jobs",)),
    # The main job runs everything, the Beam pipelines included.
    ("demo", ("lcr_tf.demo",)),
)


def layer_of(module: str) -> int:
    """Index in LAYERS of the longest prefix that covers ``module``; -1 when none does."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: pathlib.Path, source=None):
    """(line, imported module) for every import of a project module in the file (or in ``source``, read as
    that file's text), relative ones resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # ``from pkg import mod`` imports pkg.mod when mod is a module; otherwise pkg itself.
            names = []
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                as_module = ROOT.joinpath(*candidate.split("."))
                names.append(candidate if (as_module.with_suffix(".py").exists() or as_module.is_dir())
                             else base)
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("lcr_tf", "beam_jobs"):
                yield node.lineno, name


def package_files():
    return sorted(p for top in ("lcr_tf", "beam_jobs") for p in (ROOT / top).rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in package_files() if layer_of(module_name(p)) < 0]
    assert not unplaced, f"modules in no layer of tests/test_layering.py LAYERS: {unplaced}"


def test_imports_only_look_down():
    upward = []
    for path in package_files():
        own = layer_of(module_name(path))
        for line, imported in project_imports(path):
            other = layer_of(imported)
            if other > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[own][0]}) imports {imported} "
                              f"({LAYERS[other][0]})")
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("module, layer", [
    ("lcr_tf.contracts.skeleton", "contracts"), ("lcr_tf.ops.box_ops", "ops"),
    ("lcr_tf.modeling.lcr_model", "modeling"), ("lcr_tf.train", "entry points"),
    ("lcr_tf", "entry points"), ("beam_jobs.build_tfrecords", "pipelines"),
])
def test_layer_of_known_modules(module, layer):
    assert LAYERS[layer_of(module)][0] == layer


def test_an_upward_import_is_caught():
    """The checker itself: a contracts module that imports the model, even inside a function, is caught."""
    fake = ROOT / "lcr_tf" / "contracts" / "skeleton.py"
    source = "import numpy\n\ndef f():\n    from lcr_tf.modeling import lcr_model\n"
    found = list(project_imports(fake, source))
    assert found == [(4, "lcr_tf.modeling.lcr_model")]
    assert LAYERS[layer_of(found[0][1])][0] == "modeling"
    assert layer_of(found[0][1]) > layer_of(module_name(fake))


def test_layers_are_folders_and_the_top_level_holds_only_entry_points():
    """Every layer but the commands is a folder; the package's top level has no loose library module."""
    commands = set(ENTRY_POINTS) | {"lcr_tf.demo"}
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            path = ROOT.joinpath(*prefix.split("."))
            if prefix in commands:
                assert path.is_dir() or path.with_suffix(".py").is_file(), prefix
            else:
                assert path.is_dir(), f"layer {name!r}: {prefix} is not a package folder"
    loose = {module_name(p) for p in (ROOT / "lcr_tf").glob("*.py")}
    assert loose == commands, f"modules at the top of lcr_tf that are not commands: {sorted(loose - commands)}"


def test_every_package_folder_is_installed():
    """A folder of modules without ``__init__.py`` is left out by ``setup.py``'s ``find_packages``: an
    installed (not editable) package would then miss it."""
    from setuptools import find_packages
    installed = set(find_packages(str(ROOT), include=["lcr_tf", "lcr_tf.*", "beam_jobs", "beam_jobs.*"]))
    folders = {module_name(p.parent / "__init__.py") for p in package_files()}
    assert folders <= installed, f"folders of modules that would not be installed: {sorted(folders - installed)}"
