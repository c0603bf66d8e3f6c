"""genloom-toy: a third-party plugin, written only against genloom's public API."""

from pathlib import Path

from genloom import ModelSpec, Paradigm, hookimpl

__version__ = "0.3.1"
GENLOOM_PLUGIN_API = "1.0"
WEIGHTS = Path(__file__).with_name("toy.safetensors")


def _build(options):
    from .model import build

    return build(options)


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="toy-rings",
            factory=_build,
            paradigm=Paradigm.ONE_STEP,
            description="toy one-step MLP generator from the genloom-toy plugin",
            num_classes=4,
            image_size=16,
            class_names=("red", "green", "blue", "grey"),
            default_weights=str(WEIGHTS),
        )
    )


@hookimpl
def register_commands(register):
    import click

    @click.command("toy-hello")
    @click.option("--name", default="world")
    def hello(name):
        """Say hello from the genloom-toy plugin."""
        click.echo(f"hello {name} from genloom-toy")

    register(hello)
