from __future__ import annotations

import pytest
import torch

from rlfleet.impala.config import ConfigError, ModelConfig
from rlfleet.impala.networks import (
    build_network,
    channels_last_frames,
    frames_to_float,
    inference_dtype,
    resolve_network_name,
)


@pytest.mark.parametrize(
    "obs_shape, model, expected_name",
    [
        ((4, 42, 42), ModelConfig(dim=42), "vision42"),
        ((4, 42, 42), ModelConfig(dim=42, network="fast42"), "fast42"),
        ((4, 42, 42), ModelConfig(dim=42, network="fine42"), "fine42"),
        ((4, 84, 84), ModelConfig(dim=84), "nature"),
        ((4,), ModelConfig(), "mlp"),
    ],
)
def test_output_shapes(obs_shape, model, expected_name):
    assert resolve_network_name(obs_shape, model) == expected_name
    network = build_network(obs_shape, 6, model)
    dtype = torch.uint8 if len(obs_shape) == 3 else torch.float32
    obs = torch.zeros((5, *obs_shape), dtype=dtype)
    logits, values = network(obs)
    assert logits.shape == (5, 6) and values.shape == (5,)
    assert logits.dtype == values.dtype == torch.float32


def test_vision42_is_rllibs_layout():
    network = build_network((4, 42, 42), 6, ModelConfig(dim=42))
    convs = [m for m in network.torso if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (16, (4, 4), (2, 2)),
        (32, (4, 4), (2, 2)),
        (256, (11, 11), (1, 1)),
    ]


def test_uint8_frames_are_scaled_and_left_untouched():
    network = build_network((4, 42, 42), 3, ModelConfig(dim=42))
    frames = torch.full((2, 4, 42, 42), 255, dtype=torch.uint8)
    scaled = network(frames)[0]
    assert torch.equal(frames, torch.full_like(frames, 255))
    torch.testing.assert_close(scaled, network(torch.ones(2, 4, 42, 42))[0])


def test_network_must_fit_the_frames():
    with pytest.raises(ConfigError, match=r"model\.dim"):
        build_network((4, 84, 84), 6, ModelConfig(network="vision42"))
    with pytest.raises(ConfigError, match="unknown"):
        build_network((4,), 2, ModelConfig(network="nature"))


def test_mlp_hidden_sizes_follow_the_config():
    network = build_network((3,), 2, ModelConfig(fcnet_hiddens=[32, 16]))
    linears = [m for m in network.torso.modules() if isinstance(m, torch.nn.Linear)]
    assert [layer.out_features for layer in linears] == [32, 16]


def test_mlp_activation_and_initial_action_std_follow_the_config():
    from rlfleet.impala.spaces import ActionSpec

    box = ActionSpec("box", (2,), low=(-1.0, -1.0), high=(1.0, 1.0))
    model = ModelConfig(fcnet_activation="relu", initial_log_std=-0.7)
    network = build_network((3,), box, model, obs_dtype="float32")
    activations = {
        type(m) for m in network.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.Tanh))
    }
    assert activations == {torch.nn.ReLU}
    outputs, _ = network(torch.zeros(5, 3))
    std = network.distribution(outputs).log_std.exp()
    torch.testing.assert_close(std, torch.full((5, 2), 0.4966), atol=1e-4, rtol=0)
    default = build_network((3,), box, ModelConfig(), obs_dtype="float32")
    assert {type(m) for m in default.modules() if isinstance(m, torch.nn.ReLU)} == set()
    torch.testing.assert_close(default.log_std.detach(), torch.zeros(2))


@pytest.mark.parametrize(
    "obs_shape, network",
    [
        ((4, 42, 42), "vision42"),
        ((4, 42, 42), "fast42"),
        ((4, 42, 42), "fine42"),
        ((4, 84, 84), "nature"),
    ],
)
def test_every_pixel_reaches_the_outputs(obs_shape, network):
    """A torso whose strides skip the frame's edges is blind there (Pong's paddles live there)."""
    model = ModelConfig(dim=obs_shape[-1], network=network)
    net = build_network(obs_shape, 6, model)
    frames = torch.rand((1, *obs_shape), requires_grad=True)
    logits, values = net(frames)
    (logits.sum() + values.sum()).backward()
    seen = frames.grad.abs().sum(dim=(0, 1)) > 0
    assert seen.all(), f"pixels never seen: rows {(~seen).any(1).nonzero().flatten().tolist()}"


def test_frames_are_stored_channels_last_once_and_converted_exactly():
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 5, 4, 42, 42), dtype=torch.uint8, generator=generator)
    stored = channels_last_frames(frames)
    assert torch.equal(stored, frames)  # same values and shape
    assert stored.movedim(-3, -1).is_contiguous()  # each pixel's 4 values together
    assert channels_last_frames(stored) is stored  # not copied again
    gathered = stored.flatten(0, 1)[torch.tensor([7, 2, 11])]  # a minibatch stays channels-last
    for dtype in (torch.float32, torch.bfloat16):
        converted = frames_to_float(gathered, dtype)
        assert converted.dtype == dtype
        assert converted.is_contiguous(memory_format=torch.channels_last)
        expected = (frames.flatten(0, 1)[[7, 2, 11]].double() / 255).to(dtype)
        torch.testing.assert_close(converted, expected, rtol=0, atol=1e-6)


def test_a_bfloat16_copy_computes_what_the_float32_network_does_up_to_rounding():
    network = build_network((4, 42, 42), 6, ModelConfig(dim=42, network="fast42"))
    copy = build_network((4, 42, 42), 6, ModelConfig(dim=42, network="fast42"))
    copy = copy.to(inference_dtype("bfloat16"))
    copy.load_state_dict(network.state_dict())
    frames = torch.randint(0, 256, (16, 4, 42, 42), dtype=torch.uint8)
    logits, values = network(frames)
    low_logits, low_values = copy(frames)
    assert low_logits.dtype == low_values.dtype == torch.bfloat16
    torch.testing.assert_close(low_values.float(), values, rtol=0.05, atol=0.02)
    torch.testing.assert_close(low_logits.float(), logits, rtol=0.05, atol=0.002)
    assert inference_dtype("float32") == torch.float32
    assert inference_dtype("auto") in (torch.float32, torch.bfloat16)


def _first_bias_gradient_below_zero(network: str, dim: int, activation: str) -> float:
    """The gradient that reaches the first convolution's bias when every unit of the torso
    sits below zero (biases at -1, blank frames)."""
    net = build_network((4, dim, dim), 6, ModelConfig(dim=dim, network=network,
                                                      conv_activation=activation))  # fmt: skip
    convs = [m for m in net.torso.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        torch.nn.init.constant_(conv.bias, -1.0)
    logits, value = net(torch.zeros(2, 4, dim, dim, dtype=torch.uint8))
    (logits.sum() + value.sum()).backward()
    return convs[0].bias.grad.abs().sum().item()


@pytest.mark.parametrize("network", ["fast42", "nature", "auto"])
def test_conv_activation_elu_replaces_every_relu_and_keeps_units_alive(network):
    dim = 84 if network == "nature" else 42
    net = build_network((4, dim, dim), 6, ModelConfig(dim=dim, network=network,
                                                      conv_activation="elu"))  # fmt: skip
    kinds = {type(m).__name__ for m in net.torso.modules()}
    assert not kinds & {"ReLU", "ContiguousReLU"} and kinds & {"ELU", "ContiguousELU"}, kinds
    # Below zero an ELU still passes a gradient; a ReLU's unit there is dead.
    assert _first_bias_gradient_below_zero(network, dim, "elu") > 0
    assert _first_bias_gradient_below_zero(network, dim, "relu") == 0
