"""The UI tests serve the real app over an engine with the built-ins plus a tiny random DiMR (``tiny-dimr``)."""

import pytest

from genloom import Engine
from genloom.ui.service import GenerationService

from ..tiny_dimr import save_tiny, tiny_plugin


@pytest.fixture(scope="session")
def ui_engine(tmp_path_factory):
    weights = save_tiny(tmp_path_factory.mktemp("ui"))
    return Engine(third_party=False, strict=True, plugins=[("tiny", tiny_plugin(weights))])


@pytest.fixture
def make_service(ui_engine):
    return lambda per_model=1: GenerationService(engine=ui_engine, per_model=per_model)
