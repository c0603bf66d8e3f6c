"""Our built-ins are held to the same conformance kit as third-party plugins."""

import pytest

from genloom import Engine
from genloom.testing import ConformanceError, check_model, check_model_spec, check_sampler_spec


def test_smoke_model_conforms():
    check_model(Engine(third_party=False, strict=True), "smoke")


def test_builtin_samplers_conform():
    for spec in Engine(third_party=False).samplers.values():
        check_sampler_spec(spec)


def test_the_kit_can_fail():
    spec = Engine(third_party=False).models["smoke"]
    import dataclasses

    with pytest.raises(ConformanceError, match="class names"):
        check_model_spec(dataclasses.replace(spec, class_names=("only-one",)))
    with pytest.raises(ConformanceError, match="image_size"):
        check_model_spec(dataclasses.replace(spec, image_size=0))
