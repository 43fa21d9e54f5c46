"""The oracle itself: one anymail view per ESP slug, each usable as a reference."""

import ast
import importlib.util
from pathlib import Path

import pytest

from espstream.normalizer.esps import PARSERS
from espstream.schemas.esps import ESP_NAMES
from tests.support.parity.oracle import ANYMAIL_VIEWS, anymail_view


def test_every_esp_in_the_table_has_a_parser() -> None:
    assert sorted(PARSERS) == sorted(ESP_NAMES)


@pytest.mark.parametrize("slug", sorted(ANYMAIL_VIEWS))
def test_the_named_view_class_exists_in_anymail(slug: str) -> None:
    # Read, not imported: some views need an optional extra (boto3, svix) to import.
    module_name, class_name = ANYMAIL_VIEWS[slug].rsplit(".", 1)
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None, f"no module {module_name}"
    tree = ast.parse(Path(spec.origin).read_text())
    assert class_name in {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("slug", sorted(PARSERS))
def test_implemented_esps_have_the_name_anymail_gives_them(slug: str) -> None:
    assert anymail_view(slug).esp_name == ESP_NAMES[slug]
