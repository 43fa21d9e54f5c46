"""An installed espstream is one import package, beside the PyPI projects named schemas, normalizer, consumers.

The wheel is built from this checkout and installed into a fresh virtualenv
that already holds packages of those names (as ``pip install schemas
consumers normalizer`` would put them there); both keep working.
"""

import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMESAKES = ("schemas", "normalizer", "consumers", "gateway", "registry", "plumbing")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From a copy of what the wheel is built of: setuptools' build/ folder keeps files of earlier builds.
    source = tmp_path_factory.mktemp("source")
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    for folder in folders:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [built] = out.glob("espstream-*.whl")
    return built


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.startswith("espstream-")} == {"espstream"}
    assert "espstream/schemas/AnymailTrackingEvent.avsc" in names
    assert "espstream/schemas/versions/AnymailTrackingEvent.v1.avsc" in names


def test_espstream_and_its_namesakes_work_side_by_side(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # espstream's own dependencies come from this test's environment: a path entry, not a site directory,
    # so the editable install of this checkout there stays out.
    deps = Path(subprocess.check_output([sys.executable, "-c", "import fastavro, pathlib; print(pathlib.Path(fastavro.__file__).parent.parent)"], text=True).strip())
    (site / "deps.pth").write_text(f"{deps}\n")
    for name in NAMESAKES:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(f"NAMESAKE = {name!r}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    check = (
        "import importlib, pkgutil, espstream\n"
        f"names = {NAMESAKES!r}\n"
        "assert all(importlib.import_module(name).NAMESAKE == name for name in names)\n"
        "for module in pkgutil.walk_packages(espstream.__path__, 'espstream.'):\n"
        "    if not module.name.endswith('__main__'):\n"
        "        importlib.import_module(module.name)\n"
        "from espstream.schemas.avro import parsed_schema\n"
        "assert parsed_schema()['name'].endswith('AnymailTrackingEvent')\n"
        "assert all(importlib.import_module(name).NAMESAKE == name for name in names)\n"
        "print(espstream.__file__)\n"
    )
    result = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "espstream" / "__init__.py")
    cli = subprocess.run([env_dir / "bin" / "espstream", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert "normalize" in cli.stdout
