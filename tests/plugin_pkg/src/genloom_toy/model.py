"""The toy network and its loader (imports torch; loaded only when the model is built)."""

import torch
from torch import nn

import genloom


class ToyMLP(nn.Module):
    def __init__(self, num_classes=4, z_dim=8, hidden=16, size=16):
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(nn.Linear(2 * z_dim, hidden), nn.SiLU(), nn.Linear(hidden, 3 * size * size))

    def forward(self, z, labels):
        h = self.net(torch.cat([z, self.embed(labels)], 1))
        return torch.tanh(h).view(-1, 3, self.size, self.size)


class ToyModel(genloom.GenerativeModel):
    noise_shape = (8,)

    def generate(self, noise, labels):
        return self.networks["mlp"](noise, labels)


def build(options):
    sd = genloom.read_state_dict(options.weights.path)
    net = genloom.build_and_load(ToyMLP, sd, device=options.device, dtype=options.dtype, what="toy checkpoint")
    return ToyModel(spec=options.spec, networks={"mlp": net}, weights=[options.weights])


if __name__ == "__main__":
    from genloom_toy import WEIGHTS

    torch.manual_seed(7)
    genloom.save_state_dict(ToyMLP().state_dict(), WEIGHTS)
