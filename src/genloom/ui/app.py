"""The Gradio app: Generate, Compare, Edit, Plugins & models. Everything is read from the registries.

Jobs go through :class:`genloom.ui.service.GenerationService` (one model load per process, a concurrency limit per
model, a cancel token checked by the sampler every step). Bad input becomes a ``gr.Error`` with the engine's own
message, shown in the page; the app keeps serving.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..engine.errors import GenerationCancelled, GenloomError, InvalidRequest
from .service import GenerationService, SessionJobs, details

PRIVATE = {"api_visibility": "private"}  # UI plumbing, not part of the client API
MAX_UPLOAD = "2mb"  # the Edit tab takes images at the model's resolution; nothing bigger is useful
KEEP_MANIFESTS = 64  # manifest downloads kept in the app's temporary folder (oldest removed first)


def _error(exc: Exception) -> Exception:
    import gradio as gr

    return gr.Error(str(exc), print_exception=False)


class ManifestFiles:
    """The run manifests offered for download: one temporary folder per app, pruned, removed at close."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="genloom-ui-"))

    def write(self, result: Any) -> str:
        path = self.folder / f"manifest-{uuid.uuid4().hex[:12]}.json"
        path.write_text(json.dumps(result.manifest, indent=2, default=str))
        files = sorted(self.folder.glob("manifest-*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEEP_MANIFESTS]:
            old.unlink(missing_ok=True)
        return str(path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _painted_mask(editor: Any, size: int) -> tuple[Any, Any]:
    """ImageEditor value → (RGB image, keep-mask): painted pixels (any layer with alpha) are regenerated."""
    import numpy as np

    if not editor or editor.get("background") is None:
        raise InvalidRequest("Upload an image to edit first.")
    background = np.asarray(editor["background"])
    if background.shape[0] != size or background.shape[1] != size:
        raise InvalidRequest(f"The image is {background.shape[1]}×{background.shape[0]} pixels, but this model edits "
                             f"{size}×{size} images; resize or crop it first.")
    painted = np.zeros(background.shape[:2], dtype=bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[-1] == 4:
            painted |= layer[..., 3] > 0
    if not painted.any():
        raise InvalidRequest("Paint over the region to regenerate (nothing is painted yet).")
    return np.ascontiguousarray(background[..., :3]).astype(np.uint8), (~painted).astype(np.float32)


def build_app(service: GenerationService | None = None) -> Any:
    """The Blocks app (not launched). ``service`` decides the engine and the per-model concurrency."""
    import gradio as gr

    svc = service or GenerationService()
    manifests = ManifestFiles()
    models = svc.model_names()
    first = models[0]
    editable = [m for m in models if svc.engine.models[m].paradigm.value == "next-scale"] or models

    def model_changed(model: str) -> tuple[Any, ...]:
        classes = svc.class_names(model)
        spec = svc.spec(model)
        policies = svc.policies_for(model)
        policy = spec.default_guidance or "none"
        return (gr.update(choices=classes, value=classes[:4] if classes else [], visible=bool(classes)),
                gr.update(choices=policies, value=policy),
                gr.update(choices=[""] + svc.samplers_for(model), value=""),
                gr.update(value=spec.default_guidance_scale or 1.0),
                svc.policy_help(policy),
                gr.update(placeholder=svc.options_placeholder(policy, spec.default_sampler)))

    def options_hint(model: str, policy: str, sampler: str) -> tuple[Any, ...]:
        spec = svc.spec(model)
        return (svc.policy_help(policy),
                gr.update(placeholder=svc.options_placeholder(policy, sampler or spec.default_sampler)))

    def generate(model: str, classes: list[str], guidance: str, scale: float, sampler: str, steps: Any,
                 seed: Any, count: Any, options: str, weights: str, vae: str,
                 jobs: SessionJobs | None) -> Iterator[tuple[Any, ...]]:
        jobs = jobs or SessionJobs()  # API callers have no session: they cancel with job.cancel()
        token = jobs.new_token()
        job = f"#{jobs.started}"  # tells this run's status from the last one's
        finished = False
        yield [], f"{job} checking the request…", None, None  # the last run's images and details go at once
        try:
            weights_path, vae_path = svc.checked_path(weights, "weights"), svc.checked_path(vae, "VAE")
            kwargs = svc.request(model, classes, count, seed, guidance, scale, sampler or None, steps, options)
            for update in svc.run(model, kwargs, token, weights=weights_path, vae=vae_path):
                if update.result is not None:
                    r = update.result
                    finished = True
                    yield (r.images, f"{job} done: {len(r.images)} image(s), {r.timings['total_s']:.2f} s, "
                                     f"NFE/image {sum(r.nfe) / len(r.nfe):g}", details(r), manifests.write(r))
                else:
                    yield (update.previews or gr.skip(), f"{job} {update.message} ({100 * update.fraction:.0f}%)",
                           gr.skip(), gr.skip())
        except GenerationCancelled:
            finished = True
            yield [], f"{job} cancelled", None, None
        except GenloomError as exc:
            finished = True
            raise _error(exc) from None
        finally:
            if not finished:  # the client went away or cancelled (gradio_client job.cancel()): stop the job
                token.cancel()
            jobs.forget(token)

    def cancel(jobs: SessionJobs | None) -> str:
        """Its answer goes to its own note: the job's stream alone writes the status, so a late reply to the click
        cannot overwrite the job's last word ("cancelled", "done")."""
        count = jobs.cancel_all() if jobs is not None else 0
        return f"cancel sent to {count} running job(s)" if count else "nothing to cancel"

    def compare(model_a: str, guidance_a: str, scale_a: float, model_b: str, guidance_b: str, scale_b: float,
                classes: str, seed: Any, count: Any, steps: Any) -> tuple[Any, ...]:
        out: list[Any] = []
        try:
            for model, guidance, scale in ((model_a, guidance_a, scale_a), (model_b, guidance_b, scale_b)):
                names = [c.strip() for c in (classes or "").split(",") if c.strip()]
                kwargs = svc.request(model, names, count, seed, guidance, scale, None, steps, None)
                result = svc.run_to_end(model, kwargs)
                info = details(result)
                out += [result.images, f"**{model} · {guidance}** — NFE/image {info['mean NFE']:g}, "
                                       f"{info['time (s)']} s"]
        except GenloomError as exc:
            raise _error(exc) from None
        return tuple(out)

    def edit(model: str, editor: Any, label: str, seed: Any, count: Any) -> tuple[Any, ...]:
        try:
            pipe = svc.pipe(model)
            image, keep = _painted_mask(editor, pipe.spec.image_size)
            if not label:
                raise InvalidRequest("Pick the class to draw in the painted region.")
            fields = svc.request(model, [label], count, seed, None, None, None, None, None)
            result = pipe.edit(image, keep, label=label, seed=fields["seed"], num_images=int(count))
        except GenloomError as exc:
            raise _error(exc) from None
        return result.images, details(result)

    with gr.Blocks(title="genloom", analytics_enabled=False) as app:
        gr.Markdown("# genloom\nSample, compare and edit with every model the loaded plugins provide.")
        jobs = gr.State(SessionJobs())  # copied per browser session: each gets its own
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                with gr.Column(scale=1):
                    model = gr.Dropdown(models, value=first, label="Model", elem_id="model")
                    # choices follow the model; custom values are let through to the engine's own validation
                    # the first model's own values from the start: a click before the page's load event works
                    first_spec = svc.spec(first)
                    classes = gr.Dropdown(svc.class_names(first), value=svc.class_names(first)[:4], multiselect=True,
                                          allow_custom_value=True, label="Classes (cycled over the images)",
                                          elem_id="classes")
                    guidance = gr.Dropdown(svc.policies_for(first), value=first_spec.default_guidance or "none",
                                           allow_custom_value=True, label="Guidance policy", elem_id="guidance")
                    scale = gr.Number(first_spec.default_guidance_scale or 1.0, label="Guidance scale (w; 1 = none)",
                                      elem_id="scale")
                    policy_help = gr.Markdown()
                    options = gr.Textbox(label="Policy / sampler options (key=value per line; the hint lists "
                                               "what the chosen policy and sampler declare)", lines=3,
                                         elem_id="options")
                    sampler = gr.Dropdown([""] + svc.samplers_for(first), value="", allow_custom_value=True,
                                          label="Sampler (blank: the model's default)", elem_id="sampler")
                    steps = gr.Number(None, label="Steps (0 or blank: the model's; next-scale models: its scales)",
                                      precision=0, elem_id="steps")
                    with gr.Accordion("Weights from files (models without embedded weights)", open=False):
                        weights = gr.Textbox(label="Weights path on the server", elem_id="weights")
                        vae = gr.Textbox(label="VAE / VQVAE path on the server", elem_id="vae")
                    with gr.Row():
                        seed = gr.Number(0, label="Seed", precision=0, elem_id="seed")
                        dice = gr.Button("Random seed", scale=0, elem_id="randomise")
                    count = gr.Slider(1, 16, value=4, step=1, label="Images", elem_id="count")
                    with gr.Row():
                        run = gr.Button("Generate", variant="primary", elem_id="generate-button")
                        stop = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
                    cancel_note = gr.Markdown("", elem_id="cancel-note")
                with gr.Column(scale=2):
                    gallery = gr.Gallery(label="Images", format="png", columns=4, elem_id="gallery")
                    status = gr.Markdown("idle", elem_id="status")
                    info = gr.JSON(label="Run details")
                    manifest = gr.File(label="Manifest")
            model.change(model_changed, model, [classes, guidance, sampler, scale, policy_help, options], **PRIVATE)
            for field in (guidance, sampler):
                field.change(options_hint, [model, guidance, sampler], [policy_help, options], **PRIVATE)
            dice.click(lambda: random.randrange(2 ** 31), None, seed, queue=False, **PRIVATE)
            run.click(generate, [model, classes, guidance, scale, sampler, steps, seed, count, options, weights, vae,
                                 jobs], [gallery, status, info, manifest], api_name="generate",
                      concurrency_limit=None)
            # Cancel's note has one writer, Cancel: a handler clearing it at Generate's click could reply after it
            stop.click(cancel, jobs, cancel_note, queue=False, **PRIVATE)
            app.load(model_changed, model, [classes, guidance, sampler, scale, policy_help, options], **PRIVATE)
        with gr.Tab("Compare", id="compare"):
            gr.Markdown("The same seeds through two policies (or two models), side by side.")
            with gr.Row():
                with gr.Column():
                    model_a = gr.Dropdown(models, value=first, label="Model A")
                    guidance_a = gr.Dropdown(svc.policies_for(first), value="none", allow_custom_value=True,
                                             label="Policy A")
                    scale_a = gr.Number(1.0, label="Scale A")
                with gr.Column():
                    model_b = gr.Dropdown(models, value=first, label="Model B")
                    guidance_b = gr.Dropdown(svc.policies_for(first), value=svc.policies_for(first)[-1],
                                             allow_custom_value=True, label="Policy B")
                    scale_b = gr.Number(svc.spec(first).default_guidance_scale or 3.0, label="Scale B")
            with gr.Row():
                cmp_classes = gr.Textbox(label="Classes (comma-separated names or indices)", elem_id="compare-classes")
                cmp_seed = gr.Number(0, label="Seed", precision=0)
                cmp_count = gr.Slider(1, 8, value=4, step=1, label="Images")
                cmp_steps = gr.Number(None, label="Steps (0 or blank: the default)", precision=0)
            cmp_run = gr.Button("Compare", variant="primary", elem_id="compare-button")
            with gr.Row():
                with gr.Column():
                    gallery_a, text_a = gr.Gallery(format="png", columns=4, label="A"), gr.Markdown()
                with gr.Column():
                    gallery_b, text_b = (gr.Gallery(format="png", columns=4, label="B"),
                                         gr.Markdown(elem_id="compare-b"))
            for m, g in ((model_a, guidance_a), (model_b, guidance_b)):
                m.change(lambda name: gr.update(choices=svc.policies_for(name)), m, g, **PRIVATE)
            cmp_run.click(compare, [model_a, guidance_a, scale_a, model_b, guidance_b, scale_b, cmp_classes, cmp_seed,
                                    cmp_count, cmp_steps], [gallery_a, text_a, gallery_b, text_b], api_name="compare")
        with gr.Tab("Edit", id="edit"):
            gr.Markdown("Upload an image at the model's resolution, paint the region to regenerate, pick a class "
                        "(in-painting, out-painting, class editing; next-scale models).")
            with gr.Row():
                with gr.Column():
                    edit_model = gr.Dropdown(editable, value=editable[0], label="Model")
                    editor = gr.ImageEditor(type="numpy", image_mode="RGBA", label="Image (paint = regenerate)",
                                            elem_id="editor", brush=gr.Brush(default_size=2, colors=["#ff00ff"]))
                    edit_label = gr.Dropdown(svc.class_names(editable[0]), allow_custom_value=True, label="Class",
                                             elem_id="edit-class")
                    with gr.Row():
                        edit_seed = gr.Number(0, label="Seed", precision=0)
                        edit_count = gr.Slider(1, 8, value=4, step=1, label="Images")
                    edit_run = gr.Button("Edit", variant="primary", elem_id="edit-button")
                with gr.Column():
                    edit_gallery = gr.Gallery(format="png", columns=4, label="Edits")
                    edit_info = gr.JSON(label="Run details")
            edit_model.change(lambda m: gr.update(choices=svc.class_names(m)), edit_model, edit_label, **PRIVATE)
            edit_run.click(edit, [edit_model, editor, edit_label, edit_seed, edit_count], [edit_gallery, edit_info],
                           api_name="edit")
        with gr.Tab("Plugins & models", id="plugins"):
            gr.Dataframe(svc.plugin_rows(), headers=["plugin", "version", "source", "status", "provides", "error"],
                         label="Plugins", wrap=True)
            gr.Dataframe([[s.name, s.plugin, s.paradigm.value, s.num_classes, s.image_size, s.description]
                          for s in svc.engine.models.values()],
                         headers=["model", "plugin", "paradigm", "classes", "size", "description"], label="Models",
                         wrap=True)
    app.queue(default_concurrency_limit=None)
    app.genloom_manifests = manifests  # removed with the app (launch) or by the caller (tests)
    app.genloom_service = svc
    return app


def launch(host: str = "127.0.0.1", port: int | None = None, share: bool = False, per_model: int = 1,
           block: bool = True, weights_root: str | None = None) -> Any:
    """Start the app (127.0.0.1 unless told otherwise; a share link only when asked). Weights paths typed into
    the page are read anywhere on loopback, only inside ``weights_root`` beyond it."""
    import atexit
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    service = GenerationService(per_model=per_model, weights_root=weights_root,
                                any_weights_path=loopback and not share)
    app = build_app(service)
    atexit.register(app.genloom_manifests.remove)
    app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block, show_error=True,
               max_file_size=MAX_UPLOAD)
    return app
