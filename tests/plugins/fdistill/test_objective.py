"""f-distill's formulas and steps on a tiny random LaMamba teacher (spec §4.12): the h(r) table, the ratio and
weight normalisation, the reverse-KL case = DMD, ∂L/∂x = g/numel, where gradients land, and what each step does."""

import pytest
import torch
import torch.nn.functional as F

from genloom import Engine
from genloom.engine.errors import InvalidRequest
from genloom.plugins.fdistill.divergences import DIVERGENCES, divergence
from genloom.plugins.fdistill.objective import Distiller
from genloom.plugins.fdistill.ratio import RatioNormaliser, normalised_weights
from genloom.plugins.fdistill.settings import DistillSettings
from genloom.plugins.fdistill.trainer import draw
from tests.tiny_teacher import save_teacher, teacher_plugin

R = torch.tensor([0.1, 0.3, 0.7, 1.0, 1.5, 4.0, 12.0, 20.0], dtype=torch.float64)
CLOSED_FORM_H = {  # the spec's table (§4.3), written out independently of the module's
    "reverse-kl": lambda r: torch.ones_like(r),
    "softened-reverse-kl": lambda r: 1 / (1 + r),
    "js": lambda r: r / (1 + r),
    "squared-hellinger": lambda r: torch.sqrt(r) / 2,
    "forward-kl": lambda r: r,
    "jeffreys": lambda r: r + 1,
}


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_each_weight_is_r_squared_f_second_derivative_and_its_closed_form(name):
    d = DIVERGENCES[name]
    r = R.clone().requires_grad_(True)
    (df,) = torch.autograd.grad(d.f(r).sum(), r, create_graph=True)
    (d2f,) = torch.autograd.grad(df.sum(), r)
    torch.testing.assert_close(d.h(R), R ** 2 * d2f, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d.h(R), CLOSED_FORM_H[name](R), rtol=1e-12, atol=0)
    assert float(d.f(torch.ones(1, dtype=torch.float64))) == pytest.approx(0, abs=1e-12)  # f(1) = 0: D_f(p‖p) = 0


def test_divergence_names_and_aliases_and_a_typed_error_for_an_unknown_one():
    assert divergence("JS") is DIVERGENCES["js"] and divergence("fkl") is divergence("kl") is DIVERGENCES["forward-kl"]
    assert divergence("rkl").name == "reverse-kl" and divergence("sf").name == "softened-reverse-kl"
    with pytest.raises(InvalidRequest, match="Unknown f-divergence 'chi2'.*js"):
        divergence("chi2")


def test_ratio_is_clamped_normalised_per_time_bin_and_weights_average_one():
    norm = RatioNormaliser(bins=4, t_lo=0, t_hi=99)
    logits = torch.tensor([-30.0, 0.0, 1.0, 2.0, 30.0, 0.5])
    t = torch.tensor([0, 0, 60, 60, 99, 99])
    r = norm(logits, t)
    raw = logits.clamp(-10, 10).exp().clamp(0.1, 20)
    assert torch.allclose(norm.bin_means, torch.tensor([raw[:2].mean(), 1.0, raw[2:4].mean(), raw[4:].mean()]))
    for rows in ([0, 1], [2, 3], [4, 5]):  # each bin's mean ratio is 1, as E_q[p/q] = 1 at every t
        assert float(r[rows].mean()) == pytest.approx(1, abs=1e-5)
    h = normalised_weights(DIVERGENCES["forward-kl"].h, r)
    assert float(h.mean()) == pytest.approx(1, abs=1e-5) and torch.allclose(h, r / r.mean(), atol=1e-5)
    slow = RatioNormaliser(bins=4, t_lo=0, t_hi=99, ema=0.5)
    slow(torch.zeros(2), torch.tensor([0, 0]))
    slow(torch.full((2,), float(torch.log(torch.tensor(3.0)))), torch.tensor([0, 0]))
    assert float(slow.bin_means[0]) == pytest.approx(0.5 * 1 + 0.5 * 3, rel=1e-5)
    assert torch.equal(slow.bin_means[1:], torch.ones(3))  # bins not seen keep their value


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    engine = Engine(third_party=False, strict=True, plugins=[("tiny", teacher_plugin(save_teacher(folder)))])
    return engine.build_model("tiny-teacher")


def _distiller(teacher, name="js", w=2.0):
    torch.manual_seed(0)
    return Distiller(teacher, divergence(name), w, (20, 979), ratio_bins=4, ratio_ema=0.5)


def _draws(seed=0, critic=False, b=6):
    return draw(torch.Generator().manual_seed(seed), DistillSettings(batch_size=b), (3, 8, 8), 10, (20, 979), 32,
                critic)


def test_reverse_kl_is_the_dmd_update_and_the_gradient_in_x_is_g_over_numel(teacher):
    dist = _distiller(teacher, "rkl")
    torch.manual_seed(1)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    d_fake, d_teacher = torch.randn(4, 3, 8, 8).double(), torch.randn(4, 3, 8, 8).double()
    loss, h = dist.fdiv_loss(x, d_fake, d_teacher, torch.randn(4), torch.tensor([20, 300, 600, 900]))
    torch.testing.assert_close(h, torch.ones(4), rtol=2e-6, atol=0)  # h ≡ 1 whatever the discriminator says
    # DMD2's distribution-matching loss, written out: grad = (p_fake − p_real) / mean|x − p_real|
    grad = (d_fake - d_teacher) / ((x.detach() - d_teacher).abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-6)
    dmd = 0.5 * F.mse_loss(x.float(), (x.detach() - grad).float().detach())
    assert float(loss.detach()) == pytest.approx(float(dmd.detach()), rel=1e-5)
    (gx,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(gx.float(), (grad / x.numel()).float(), rtol=1e-5, atol=1e-9)
    # and with JS the same direction, reweighted per sample by the normalised h
    js = _distiller(teacher, "js")
    logits = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    loss, h = js.fdiv_loss(x, d_fake, d_teacher, logits, torch.tensor([20, 20, 20, 20]))
    (gx,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(gx.float(), (h.reshape(-1, 1, 1, 1) * grad / x.numel()).float(), rtol=1e-5,
                               atol=1e-9)
    assert float(h.mean()) == pytest.approx(1, abs=1e-5) and h[3] > h[2] > h[1] > h[0]  # JS's h grows with r


def test_both_steps_give_finite_losses_and_gradients_land_only_in_their_optimizers_modules(teacher):
    dist = _distiller(teacher)
    loss, stats = dist.student_loss(_draws())
    assert set(stats) == {"f_distill_loss", "gan_loss_gen", "h_min", "h_avg", "h_max"}
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()) and stats["h_avg"] == pytest.approx(1, abs=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in dist.student.parameters() if p.requires_grad)
    assert all(p.grad is None for m in (dist.fake, dist.head, dist.student_ema, teacher.denoiser())
               for p in m.parameters())
    dist.zero_grad(set_to_none=True)
    d = _draws(critic=True)
    real = torch.randn(32, 3, 8, 8)
    loss, stats = dist.critic_loss(d, real[d.real_rows], d.labels)
    assert set(stats) == {"fake_score_loss", "gan_loss_disc"} and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in dist.fake.parameters())
    assert all(p.grad is not None for p in dist.head.parameters())
    assert all(p.grad is None for m in (dist.student, dist.student_ema, teacher.denoiser()) for p in m.parameters())


def test_the_critic_step_lowers_its_losses_and_the_student_step_moves_samples_against_g(teacher):
    dist = _distiller(teacher)
    d = _draws(seed=3, critic=True, b=8)
    real = torch.randn(32, 3, 8, 8) * 0.5
    opt = torch.optim.Adam([*dist.fake.parameters(), *dist.head.parameters()], lr=1e-3)
    first = None
    for _ in range(8):  # the same batch: the fake score fits the student's samples, the head separates the sets
        loss, stats = dist.critic_loss(d, real[d.real_rows], d.labels)
        first = first or stats
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert stats["fake_score_loss"] < first["fake_score_loss"] and stats["gan_loss_disc"] < first["gan_loss_disc"]

    d = _draws(seed=4, b=8)
    dist.gan_weight = 0.0  # only the f-divergence term: its step must follow −g
    with torch.no_grad():
        x = dist.generate(d.z, d.labels)
        x_t = dist.noised(x, d.t, d.eps)
        d_fake = dist.x0(dist.fake, x_t, d.t, d.labels)
        d_teacher, _ = dist.teacher_x0(x_t, d.t, d.labels)
    direction = d_fake - d_teacher
    loss, _ = dist.student_loss(d)
    sgd = torch.optim.SGD(dist.student.parameters(), lr=1e-2)
    sgd.zero_grad()
    loss.backward()
    sgd.step()
    with torch.no_grad():
        moved = dist.generate(d.z, d.labels) - x
    assert float((moved * direction).sum()) < 0  # toward the teacher's denoised estimate, away from the fake one


def test_the_teachers_cfg_is_baked_into_its_target_and_w_one_is_the_conditional_prediction(teacher):
    d = _draws(seed=5)
    x_t = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    guided, _ = _distiller(teacher, w=3.0).teacher_x0(x_t, d.t, d.labels)
    plain = _distiller(teacher, w=1.0)
    cond, _ = plain.teacher_x0(x_t, d.t, d.labels)
    with torch.no_grad():
        uncond = plain.x0(teacher.denoiser(), x_t, d.t, torch.full_like(d.labels, 10))
    torch.testing.assert_close(guided, cond + 2.0 * (cond - uncond), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(guided, cond)


def test_a_baked_stack_adds_cfg_only_in_its_window_and_the_guides_autoguidance_everywhere(teacher, tmp_path):
    engine = Engine(third_party=False, strict=True, plugins=[("tiny", teacher_plugin(save_teacher(tmp_path)))])
    guide = engine.build_model("tiny-teacher", weights=save_teacher(tmp_path, seed=1)).denoiser()
    d = _draws(seed=7)
    t = torch.tensor([20, 300, 499, 500, 700, 979])
    x_t = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    torch.manual_seed(0)
    dist = Distiller(teacher, divergence("js"), 3.0, (20, 979), cfg_from=500, guide=guide, guide_scale=4.0)
    guided, _ = dist.teacher_x0(x_t, t, d.labels)
    with torch.no_grad():
        cond = dist.x0(teacher.denoiser(), x_t, t, d.labels)
        uncond = dist.x0(teacher.denoiser(), x_t, t, torch.full_like(d.labels, 10))
        weak = dist.x0(guide, x_t, t, d.labels)
    window = (t >= 500).float().reshape(-1, 1, 1, 1)
    torch.testing.assert_close(guided, cond + 2.0 * window * (cond - uncond) + 3.0 * (cond - weak),
                               rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in dist.guide.parameters())
