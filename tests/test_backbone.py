"""Model introspection helpers that need no model: the attention-kernel guard."""

import pytest
import torch

from softprompt.models.backbone import attention_kernels


def test_attention_kernels_is_a_no_op_off_cuda():
    before = torch.backends.cuda.cudnn_sdp_enabled()
    with attention_kernels(torch.device("cpu")):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_attention_kernels_turns_cudnn_attention_off_on_cuda_and_restores_it():
    pytest.importorskip("torch.nn.attention")
    before = (torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled())
    with attention_kernels(torch.device("cuda")):  # only sets SDPA flags: runs without a GPU too
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    assert (torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled()) == before
