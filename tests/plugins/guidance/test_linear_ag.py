"""LinearAG: a table calibrated on full-CFG trajectories replaces unconditional passes by affine estimates."""

import pytest
import torch

from genloom.engine.errors import InvalidRequest
from genloom.plugins.guidance.linear_ag import LinearAGTable, calibrate, default_schedule, fit_table

from ...conftest import run_cli

LABELS = [1, 4, 7]


@pytest.fixture(scope="module")
def table_path(tiny_pipe, tmp_path_factory):
    table = calibrate(tiny_pipe, sampler="ddim", steps=8, scale=3.0, num=20, k_full=2, batch_size=10,
                      log=lambda _: None)
    return table.save(tmp_path_factory.mktemp("lag") / "table.safetensors")


def test_schedule_and_fit_recover_an_exact_affine_relation():
    replace, guided = default_schedule(10, 2)
    assert replace.tolist() == [False, False, True, False, True] + [False] * 5
    assert guided.tolist() == [True] * 5 + [False] * 5
    g = torch.Generator().manual_seed(0)
    cond = [torch.randn(6, 3, 4, 4, generator=g) for _ in range(5)]
    uncond = [torch.randn(6, 3, 4, 4, generator=g)]
    for i in range(1, 5):
        uncond.append(0.8 * cond[i] - 0.3 * cond[i - 1] + 0.5 * uncond[i - 1] + 0.1)
    coefficients, r2 = fit_table(cond, uncond, torch.tensor([False, True, True, True, True]))
    torch.testing.assert_close(coefficients[1:], torch.tensor([[0.8, -0.3, 0.5, 0.1]] * 4, dtype=torch.float64))
    assert all(r > 0.999999 for r in r2[1:])


def test_calibrated_table_cuts_nfe_and_stays_close_to_cfg(tiny_pipe, table_path):
    table = LinearAGTable.load(table_path)
    assert table.steps == 8 and table.sampler == "ddim" and table.scale == 3.0 and table.model == "dimr"
    kw = dict(labels=LABELS, seed=5, sampler="ddim", steps=8, guidance_scale=3.0, output_type="pt")
    cfg = tiny_pipe(guidance="cfg", **kw)
    lag = tiny_pipe(guidance="linear-ag", table=str(table_path), **kw)
    assert lag.nfe == [8 + 3] * 3 and cfg.nfe == [16] * 3  # ε_u evaluated at steps 0, 1, 3; estimated at 2
    assert lag.telemetry["guidance"][0]["estimated_steps"] == [2]
    plain = tiny_pipe(guidance="none", **{k: v for k, v in kw.items() if k != "guidance_scale"})
    assert (lag.images - cfg.images).abs().mean() < (plain.images - cfg.images).abs().mean()


@pytest.mark.parametrize("change,message", [({"steps": 10}, "fitted for 8 steps"),
                                            ({"guidance_scale": 2.0}, "guidance_scale 3.0"),
                                            ({"sampler": "euler"}, "'ddim'")])
def test_a_table_that_does_not_match_the_run_is_refused(tiny_pipe, table_path, change, message):
    kw = dict(labels=LABELS, seed=5, sampler="ddim", steps=8, guidance_scale=3.0, guidance="linear-ag",
              table=str(table_path))
    with pytest.raises(InvalidRequest, match=message):
        tiny_pipe(**{**kw, **change})


def test_no_table_is_refused(tiny_pipe):
    with pytest.raises(InvalidRequest, match="calibrate linear-ag"):
        tiny_pipe(labels=LABELS, guidance="linear-ag", guidance_scale=3.0)


def test_calibrate_command_writes_a_table_and_refuses_what_it_cannot_fit(tmp_path):
    from ...tiny_dimr import save_tiny

    weights = save_tiny(tmp_path)
    out = tmp_path / "lag.safetensors"
    done = run_cli("calibrate", "linear-ag", "-m", "dimr", "--weights", str(weights), "-L", "num_heads=2",
                   "--sampler", "ddim", "--steps", "8", "--scale", "3", "--num", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "estimated steps" in done.stdout and LinearAGTable.load(out).steps == 8
    again = run_cli("calibrate", "linear-ag", "-m", "dimr", "--weights", str(weights), "-L", "num_heads=2",
                    "--sampler", "ddim", "--steps", "8", "--scale", "3", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run_cli("calibrate", "linear-ag", "-m", "var-shapes", "--sampler", "ddim", "--steps", "8", "--scale", "3",
                  "--num", "4", "--out", str(tmp_path / "var.safetensors"))
    assert bad.returncode == 2 and "is for diffusion models" in bad.stderr
