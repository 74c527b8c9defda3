import os

import pytest
import torch

from ddnm_edu.unet import UNet, UNetConfig

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def sched():
    from ddnm_edu import NoiseSchedule

    return NoiseSchedule.linear(1000)


@pytest.fixture(scope="session")
def random_unet():
    """An untrained UNet (PyTorch's default init, also for the layers the UNet zero-initialises): arbitrary eps."""
    torch.manual_seed(0)
    m = UNet(UNetConfig(in_channels=3, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16,)))
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.reset_parameters()
    return m.eval()
