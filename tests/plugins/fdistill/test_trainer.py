"""`genloom distill` end to end on a tiny random LaMamba teacher: resumable bit-identically, loadable as a one-step
student that names its teacher, the same student from two processes, and bad input refused before training."""

import hashlib
import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from genloom import Engine
from genloom.engine.errors import InvalidRequest, NotRegistered, WeightsError
from genloom.engine.weights import read_metadata, save_state_dict
from genloom.plugins.fdistill.settings import DistillSettings
from genloom.plugins.fdistill.trainer import distill
from tests.conftest import launch_cli, run_cli
from tests.tiny_teacher import TINY, save_real_npz, save_teacher, teacher_plugin

SHAPES_NOISE_JSON = 'noise_schedule={"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v"}'


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fd")
    return folder, save_teacher(folder), save_real_npz(folder)


def _engine(weights, **kw):
    return Engine(third_party=False, strict=True, plugins=[("tiny", teacher_plugin(weights, **kw))])


def _settings(npz, **kw):
    base = dict(teacher="tiny-teacher", data=str(npz), data_size=64, steps=6, batch_size=4, student_update_freq=2,
                checkpoint_every=3)
    return DistillSettings(**{**base, **kw})


def quiet(_):
    return None


def test_resuming_continues_bit_identically_and_the_student_loads_as_a_one_step_model(files, tmp_path):
    _, weights, npz = files
    engine = _engine(weights)
    a = distill(tmp_path / "a", _settings(npz), engine=engine, log=quiet)
    assert a.name == "tiny-teacher-fdistill-js.safetensors"
    assert (tmp_path / "a" / "tiny-teacher-fdistill-js_step3.safetensors").exists()
    half = distill(tmp_path / "half", _settings(npz, steps=3), engine=engine, log=quiet)  # a finished shorter run
    state = half.with_name("tiny-teacher-fdistill-js_state.safetensors")
    b = distill(tmp_path / "b", _settings(npz), resume=str(state), engine=engine, log=quiet)  # continued to 6
    sa, sb = load_file(a), load_file(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    teacher = load_file(weights)
    assert sa.keys() == teacher.keys() and any(not torch.equal(sa[k], teacher[k]) for k in sa)  # it learned

    pipe = engine.load("fdistill", weights=a)
    assert pipe.spec.paradigm.value == "one-step" and pipe.spec.num_classes == 10 and pipe.spec.image_size == 8
    res = pipe(labels=[0, 1, 2], seed=0, output_type="pt")
    assert res.images.shape == (3, 3, 8, 8) and res.nfe == [1, 1, 1] and torch.isfinite(res.images).all()
    again = pipe(labels=[0, 1, 2], seed=0, output_type="pt")
    assert torch.equal(res.images, again.images)
    config = res.manifest["config"]
    assert config["teacher"] == "tiny-teacher" and config["divergence"] == "js" and config["guidance_scale"] == 2.0
    assert config["teacher_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    with pytest.raises(InvalidRequest, match="one-step generator: guidance is distilled"):
        pipe(labels=[0], guidance="cfg", guidance_scale=2.0)
    with pytest.raises(WeightsError, match="not an f-distill student"):
        engine.load("fdistill", weights=weights)


def test_bad_input_is_refused_before_training(files, tmp_path):
    _, weights, npz = files
    engine = _engine(weights)
    cases = [
        (dict(teacher="smoke"), InvalidRequest, "distils diffusion models; 'smoke' is a one-step model"),
        (dict(teacher="tiny-techer"), NotRegistered, "tiny-teacher"),
        (dict(divergence="chi2"), InvalidRequest, "Unknown f-divergence 'chi2'"),
        (dict(guidance_scale=0.5), InvalidRequest, "guidance-scale must be ≥ 1"),
        (dict(batch_size=0), InvalidRequest, "--batch-size must be > 0"),
        (dict(data="shapes"), InvalidRequest, "--data shapes is 32-px images"),
        (dict(data=str(tmp_path / "none.npz")), InvalidRequest, "neither 'shapes' nor an existing .npz"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            distill(tmp_path / "out", _settings(npz, **change), engine=engine, log=quiet)
    free = _engine(save_teacher(tmp_path, config=replace(TINY, num_classes=0, label_table_rows=1)))
    with pytest.raises(InvalidRequest, match="has no null class"):
        distill(tmp_path / "out", _settings(npz, guidance_scale=3.0), engine=free, log=quiet)
    assert not any((tmp_path / "out").glob("*.safetensors"))

    # a resume state of another teacher (other weights) is refused before any data is prepared
    distill(tmp_path / "first", _settings(npz), engine=engine, log=quiet)
    other = save_teacher(tmp_path, seed=1)
    lines = []
    with pytest.raises(InvalidRequest, match="from another configuration .*teacher_weights_sha256"):
        distill(tmp_path / "second", _settings(npz), engine=_engine(other), log=lines.append,
                resume=str(tmp_path / "first" / "tiny-teacher-fdistill-js_state.safetensors"))
    assert not any("encoding" in line for line in lines)
    with pytest.raises(InvalidRequest, match="already holds tiny-teacher-fdistill-js.safetensors"):
        distill(tmp_path / "first", _settings(npz), engine=engine, log=quiet)  # never overwritten silently


def test_the_cli_distils_a_generic_family_checkpoint_and_two_processes_agree_with_one(files, tmp_path):
    _, weights, npz = files
    args = ["--teacher", "lamamba", "--teacher-weights", str(weights), "--teacher-option", SHAPES_NOISE_JSON,
            "--guidance-scale", "2", "--divergence", "fkl", "--data", str(npz), "--data-size", "64", "--steps", "4",
            "--batch-size", "4", "--student-update-freq", "2", "--checkpoint-every", "0"]
    one = run_cli("distill", *args, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    student = tmp_path / "one" / "lamamba-fdistill-forward-kl.safetensors"
    meta = json.loads(read_metadata(student)["genloom_fdistill"])
    assert meta["teacher"] == "lamamba" and meta["divergence"] == "forward-kl" and meta["guidance_scale"] == 2.0
    assert meta["teacher_options"] == {"noise_schedule": {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v"}}
    two = launch_cli("distill", *args, "--out", str(tmp_path / "two"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es)" in two.stdout + two.stderr
    sa, sb = load_file(student), load_file(tmp_path / "two" / student.name)
    assert max(float((sa[k] - sb[k]).abs().max()) for k in sa) < 1e-4  # the same run, split over two processes

    bad = run_cli("distill", "--teacher", "smoke", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "distils diffusion models" in bad.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_the_teachers_default_stack_is_baked_in_cfg_window_and_guide_and_each_can_be_changed(files, tmp_path):
    from genloom.plugins.fdistill.student import read_student_config, teacher_guidance
    from genloom.plugins.fdistill.trainer import baked_guidance

    _, weights, npz = files
    guide = save_teacher(tmp_path, seed=1)
    stack = dict(default_guidance="cfg+autoguidance", default_guidance_scale=3.0,
                 default_guidance_options={"stop": 0.5, "autoguidance.scale": 4.0,
                                           "autoguidance.guide_weights": str(guide)})
    spec = replace(_engine(weights).models["tiny-teacher"], **stack)
    assert baked_guidance(spec, DistillSettings()) == (3.0, 0.5, str(guide), 4.0)
    assert baked_guidance(spec, DistillSettings(guide_weights="none", cfg_stop=1.0)) == (3.0, 1.0, None, 1.0)
    assert baked_guidance(spec, DistillSettings(guidance_scale=2.0, guide_scale=2.5)) == (2.0, 0.5, str(guide), 2.5)
    plain = replace(spec, default_guidance="cfg", default_guidance_options={})
    assert baked_guidance(plain, DistillSettings()) == (3.0, 1.0, None, 1.0)
    for change, message in [(dict(cfg_stop=0.0), "--cfg-stop must be in"), (dict(guide_scale=0.5), "must be ≥ 1"),
                            (dict(guide_weights="none", guide_scale=2.0), "there is no guide")]:
        with pytest.raises(InvalidRequest, match=message):
            baked_guidance(spec, DistillSettings(**change))
    with pytest.raises(InvalidRequest, match="needs --guide-scale"):
        baked_guidance(plain, DistillSettings(guide_weights=str(guide)))

    engine = _engine(weights, **stack)
    a = distill(tmp_path / "a", _settings(npz, steps=3), engine=engine, log=quiet)
    config = engine.load("fdistill", weights=a)(labels=[1], seed=0, output_type="pt").manifest["config"]
    assert config["baked_guide"]["guide_weights"] == str(guide) and config["baked_guide"]["cfg_stop"] == 0.5
    assert config["baked_guide"]["guide_sha256"] == hashlib.sha256(guide.read_bytes()).hexdigest()
    request = teacher_guidance(read_student_config(a))  # the teacher a benchmark compares this student with
    assert request == {"guidance": "cfg+autoguidance", "guidance_scale": 3.0, "stop": 0.5, "autoguidance.scale": 4.0,
                       "autoguidance.guide_weights": str(guide)}
    assert engine.load("tiny-teacher")(labels=[1], seed=0, output_type="pt", **request).nfe == [4 + 2 + 4]
    state = str(a.with_name("tiny-teacher-fdistill-js_state.safetensors"))
    with pytest.raises(InvalidRequest, match="from another configuration .*baked_guide"):
        distill(tmp_path / "b", _settings(npz, steps=6, guide_weights="none"), resume=state, engine=engine, log=quiet)
    b = distill(tmp_path / "b", _settings(npz, steps=6), resume=state, engine=engine, log=quiet)
    assert json.loads(read_metadata(b)["genloom_fdistill"])["iterations"] == 6


def test_a_new_run_starts_from_a_kept_student_of_the_same_teacher_and_counts_its_iterations(files, tmp_path):
    _, weights, npz = files
    engine = _engine(weights)
    first = distill(tmp_path / "a", _settings(npz, steps=4), engine=engine, log=quiet)
    lines = []
    # a tiny learning rate: the new run's student is the kept one, one AdamW step of 1e-12 away
    second = distill(tmp_path / "b", _settings(npz, steps=2, lr=1e-12, divergence="rkl", seed=1, checkpoint_every=1,
                                               init_student=str(first)), engine=engine, log=lines.append)
    kept, started, teacher = load_file(first), load_file(second), load_file(weights)
    assert max(float((kept[k] - started[k]).abs().max()) for k in kept) < 1e-6
    assert any(not torch.equal(kept[k], teacher[k]) for k in kept)
    assert any(f"starts from {first}" in line for line in lines)
    meta = json.loads(read_metadata(second)["genloom_fdistill"])
    assert meta["iterations"] == 4 + 2 and meta["divergence"] == "reverse-kl"
    assert second.with_name("tiny-teacher-fdistill-reverse-kl_step5.safetensors").exists()  # named by 4 + 1
    origin = meta["init_student"]
    assert origin["iterations"] == 4 and origin["divergence"] == "js"
    assert origin["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()

    # resuming the started run keeps its origin and its count
    state = str(second.with_name("tiny-teacher-fdistill-reverse-kl_state.safetensors"))
    third = distill(tmp_path / "c", _settings(npz, steps=3, lr=1e-12, divergence="rkl", seed=1), resume=state,
                    engine=engine, log=quiet)
    meta = json.loads(read_metadata(third)["genloom_fdistill"])
    assert meta["iterations"] == 4 + 3 and meta["init_student"] == origin

    # refused before any data is prepared: with --resume, a student of another teacher, one that did not record its
    # teacher's sha256, a file that is no student
    meta = read_metadata(first)
    info = json.loads(meta["genloom_fdistill"])
    del info["teacher_sha256"]
    unrecorded = save_state_dict(load_file(first), tmp_path / "unrecorded.safetensors",
                                 metadata={**meta, "genloom_fdistill": json.dumps(info)})
    cases = [(dict(init_student=str(first)), dict(resume=state), engine, InvalidRequest, "pass one of them"),
             (dict(init_student=str(first)), {}, _engine(save_teacher(tmp_path, seed=1)), InvalidRequest,
              "not from this teacher .*with --teacher-weights"),
             (dict(init_student=str(unrecorded)), {}, engine, InvalidRequest, "whose sha256 it did not record"),
             (dict(init_student=str(weights)), {}, engine, WeightsError, "not an f-distill student")]
    for change, extra, on, error, message in cases:
        lines.clear()
        with pytest.raises(error, match=message):
            distill(tmp_path / "d", _settings(npz, **change), engine=on, log=lines.append, **extra)
        assert not any("encoding" in line for line in lines)


def test_a_critic_warmup_keeps_the_student_waiting_while_the_fresh_critic_trains(files, tmp_path):
    _, weights, npz = files
    engine = _engine(weights)
    kept = distill(tmp_path / "a", _settings(npz, steps=4), engine=engine, log=quiet)
    run = dict(steps=4, student_update_freq=2, checkpoint_every=1, init_student=str(kept))
    waited = distill(tmp_path / "b", _settings(npz, critic_warmup=2, **run), engine=engine, log=quiet)
    plain = distill(tmp_path / "c", _settings(npz, **run), engine=engine, log=quiet)
    before = load_file(kept)
    for step in (5, 6):  # iterations 1 and 2 of the new run: the critic's alone
        during = load_file(waited.with_name(f"tiny-teacher-fdistill-js_step{step}.safetensors"))
        assert all(torch.equal(during[k], before[k]) for k in before)
    after, without = load_file(waited), load_file(plain)
    assert any(not torch.equal(after[k], before[k]) for k in before)  # the student trains after it
    assert any(not torch.equal(after[k], without[k]) for k in before)  # against a critic two steps further on
    with pytest.raises(InvalidRequest, match="--critic-warmup must be ≥ 0 and below --steps"):
        distill(tmp_path / "d", _settings(npz, critic_warmup=4, **run), engine=engine, log=quiet)


def test_the_label_table_learns_class_lr_mult_times_faster_and_the_rest_alike(files, tmp_path):
    """One student step (AdamW's first step is lr·g/|g|): with --class-lr-mult 10 the label table moves exactly 10×
    as far as with 1, every other weight the same; a state of one multiplier does not resume with another."""
    _, weights, npz = files
    engine = _engine(weights)
    one_step = dict(steps=1, student_update_freq=1, checkpoint_every=0, lr=1e-3)
    states = {}
    for mult in (1.0, 10.0):
        out = distill(tmp_path / str(mult), _settings(npz, class_lr_mult=mult, **one_step), engine=engine, log=quiet)
        states[mult] = load_file(out.with_name("tiny-teacher-fdistill-js_state.safetensors"))
    teacher = load_file(weights)
    student_keys = [k for k in states[1.0] if k.startswith("student.")]
    table = [k for k in student_keys if k.endswith("embedding_table.weight")]
    assert len(table) == 1 and len(student_keys) > 10
    for k in student_keys:
        before = teacher[k[len("student."):]]
        step1, step10 = states[1.0][k] - before, states[10.0][k] - before
        if k in table:
            assert step1.abs().max() > 0
            torch.testing.assert_close(step10, 10 * step1, rtol=1e-4, atol=1e-7)  # float32 weights ~1
        else:
            assert torch.equal(states[1.0][k], states[10.0][k]), k
    state = str(tmp_path / "1.0" / "tiny-teacher-fdistill-js_state.safetensors")
    with pytest.raises(InvalidRequest, match="another configuration.*class_lr_mult"):
        distill(tmp_path / "1.0", _settings(npz, class_lr_mult=10.0, **{**one_step, "steps": 2}), resume=state,
                engine=engine, log=quiet)


def test_teacher_pairs_are_the_teachers_samples_written_once_and_a_resumed_leg_reuses_them(files, tmp_path):
    from genloom.plugins.fdistill.student import read_student_config, teacher_guidance

    _, weights, npz = files
    engine = _engine(weights)
    settings = _settings(npz, regression_pairs=5, regression_weight=1.0)
    a = distill(tmp_path / "a", settings, engine=engine, log=quiet)
    pairs = load_file(tmp_path / "a" / "tiny-teacher-fdistill-js_pairs5.safetensors")
    assert pairs["z"].shape == pairs["x0"].shape == (5, 3, 8, 8) and pairs["labels"].tolist() == [0, 1, 2, 3, 4]
    guidance = teacher_guidance(read_student_config(a))  # the guidance the student bakes in: CFG w 2
    assert guidance == {"guidance": "cfg", "guidance_scale": 2.0}
    teacher = engine.load("tiny-teacher")(labels=[0, 1, 2, 3, 4], latents=pairs["z"], output_type="latent",
                                          **guidance)
    assert torch.allclose(teacher.images.float(), pairs["x0"], atol=1e-5)  # the teacher's samples of those noises

    half = distill(tmp_path / "half", replace(settings, steps=3), engine=engine, log=quiet)
    lines = []
    b = distill(tmp_path / "half", settings, resume=str(half.with_name("tiny-teacher-fdistill-js_state.safetensors")),
                engine=engine, log=lines.append)
    assert any("reading 5 teacher pairs" in line for line in lines)  # not sampled again
    sa, sb = load_file(a), load_file(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # bit-identical with the regression loss on
    plain = load_file(distill(tmp_path / "plain", _settings(npz), engine=engine, log=quiet))
    assert any(not torch.equal(sa[k], plain[k]) for k in sa)  # the loss reaches the student

    # a pairs file of another run (another seed) is refused, not overwritten; bad numbers before any work
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tiny-teacher-fdistill-js_pairs5.safetensors").write_bytes(
        (tmp_path / "a" / "tiny-teacher-fdistill-js_pairs5.safetensors").read_bytes())
    lines = []
    with pytest.raises(InvalidRequest, match="holds teacher pairs of another run"):
        distill(tmp_path / "other", replace(settings, seed=1), engine=engine, log=lines.append)
    assert not any("encoding" in line for line in lines)  # before any data is prepared
    with pytest.raises(InvalidRequest, match="--regression-pairs and --regression-weight must be ≥ 0"):
        distill(tmp_path / "bad", replace(settings, regression_pairs=-1), engine=engine, log=quiet)
