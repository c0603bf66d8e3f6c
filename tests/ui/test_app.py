"""The real app, served on 127.0.0.1 and driven through gradio_client."""

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from genloom.ui.app import build_app

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture
def served(make_service):
    app = build_app(make_service(2))
    app.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield app, gradio_client.Client(app.local_url, verbose=False)
    finally:
        app.close()


def _generate(client, cls, seed):
    return client.predict("tiny-dimr", [cls], "cfg", 3.0, "ddim", 4, seed, 1, "", "", "", api_name="/generate")


def test_binds_to_localhost_only(served):
    app, _ = served
    assert app.local_url.startswith("http://127.0.0.1:") and app.share_url is None


def test_eight_concurrent_requests_match_the_python_api(served, ui_engine):
    _, client = served
    jobs = [("star", s) for s in range(4)] + [("heart", s) for s in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda j: _generate(client, *j), jobs))
    pipe = ui_engine.load("tiny-dimr")  # the Python API, a pipeline of its own
    for (cls, seed), (gallery, status, info, manifest) in zip(jobs, results):
        assert re.match(r"#\d+ done:", status) and info["NFE per image"] == [8]  # 4 steps × (cond + uncond)
        served_img = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
        direct = pipe(labels=[cls], seed=seed, sampler="ddim", steps=4, guidance="cfg", guidance_scale=3.0,
                      output_type="np").images[0]
        assert np.array_equal(served_img, (direct * 255).round().astype(np.uint8))


def test_bad_input_is_reported_and_the_app_keeps_serving(served):
    _, client = served
    with pytest.raises(gradio_client.exceptions.AppError, match="Pick at least one class"):
        client.predict("tiny-dimr", [], "cfg", 3.0, "", 4, 0, 1, "", "", "", api_name="/generate")
    with pytest.raises(gradio_client.exceptions.AppError, match="Steps must be a whole number from 1 to 1000"):
        client.predict("tiny-dimr", ["star"], "cfg", 3.0, "", 99999, 0, 1, "", "", "", api_name="/generate")
    with pytest.raises(gradio_client.exceptions.AppError, match="request argument of its own"):
        client.predict("tiny-dimr", ["star"], "cfg", 3.0, "", 4, 0, 1, "num_images=200", "", "",
                       api_name="/generate")  # the options box cannot lift the image cap
    with pytest.raises(gradio_client.exceptions.AppError, match=r"Unknown option\(s\) \['bogus'\] for sampler 'ddim'"):
        client.predict("tiny-dimr", ["star"], "cfg", 3.0, "", 4, 0, 1, "bogus=1", "", "", api_name="/generate")
    gallery, status, _, _ = _generate(client, "ring", 0)
    assert re.match(r"#\d+ done:", status) and len(gallery) == 1


def _editor(size, painted=True):
    background = np.full((size, size, 4), 255, dtype=np.uint8)
    background[size // 4: size // 2, size // 4: size // 2, :3] = (200, 30, 30)
    layer = np.zeros((size, size, 4), dtype=np.uint8)
    if painted:
        layer[: size // 2, : size // 2] = (0, 0, 0, 255)  # paint the top-left quarter: regenerate it
    return background, layer


def _edit_payload(tmp_path, size, painted=True):
    background, layer = _editor(size, painted)
    paths = []
    for name, arr in (("bg", background), ("layer", layer)):
        path = tmp_path / f"{name}.png"
        Image.fromarray(arr, "RGBA").save(path)
        paths.append(gradio_client.handle_file(str(path)))
    return {"background": paths[0], "layers": [paths[1]], "composite": paths[0]}


def test_edit_regenerates_the_painted_region(served, tmp_path):
    _, client = served
    gallery, info = client.predict("tiny-var", _edit_payload(tmp_path, 64), "207", 0, 2, api_name="/edit")
    assert len(gallery) == 2 and info["NFE per image"] == [2 * 4] * 2  # 4 scales × (cond + uncond)
    edited = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
    assert edited.shape == (64, 64, 3)


@pytest.mark.parametrize("size,painted,message", [
    (48, True, "this model edits 64×64 images; resize or crop"),
    (64, False, "Paint over the region"),
])
def test_bad_edit_input_is_reported(served, tmp_path, size, painted, message):
    _, client = served
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict("tiny-var", _edit_payload(tmp_path, size, painted), "207", 0, 1, api_name="/edit")



def _wait_until(predicate, bound_s=300.0):
    """Poll for a state; the bound only turns a hang into a failure (a busy machine just takes longer)."""
    import time

    end = time.monotonic() + bound_s
    while not predicate():
        assert time.monotonic() < end, "the expected state never came"
        time.sleep(0.05)


def test_cancelling_an_api_job_stops_it(served):
    app, client = served
    history = app.genloom_service.history
    history.clear()
    job = client.submit("tiny-dimr", ["star"], "cfg", 3.0, "ddim", 1000, 0, 16, "", "", "", api_name="/generate")
    _wait_until(lambda: any("step" in str(out[1]) for out in job.outputs()))  # steps stream: the job is running
    job.cancel()
    _wait_until(lambda: len(history) > 0)
    assert list(history) == [("tiny-dimr", "cancelled")]
