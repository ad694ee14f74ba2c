import pytest
import torch
from torch import nn

from sk_mnist.modules import ARCHITECTURES, DeepCNN


# FastCNN pools between each convolution and its batch norm: nothing to fold.
@pytest.mark.parametrize("architecture", sorted(set(ARCHITECTURES) - {"fast"}))
def test_evaluation_folds_batch_norm_into_the_convolutions(architecture):
    torch.manual_seed(0)
    net = ARCHITECTURES[architecture](batch_norm=True)
    with torch.no_grad():  # a few training batches move the running statistics off 0 and 1
        for _ in range(3):
            net(torch.randn(32, 1, 28, 28) * 3 + 1)
    net.eval()
    x = torch.randn(16, 1, 28, 28)
    layer_by_layer = net.classifier(nn.Sequential(*net.features)(x))
    assert torch.allclose(net(x), layer_by_layer, atol=1e-5)
    # The folded path is a different computation, not the layers called one by one.
    calls = []
    hook = nn.modules.module.register_module_forward_hook(lambda m, i, o: calls.append(type(m)))
    try:
        net(x)
    finally:
        hook.remove()
    assert nn.BatchNorm2d not in calls and nn.Conv2d not in calls
    # Gradients still reach the convolution and the batch norm through the folding.
    net(x).sum().backward()
    assert net.features[0].weight.grad.abs().sum() > 0
    assert net.features[1].weight.grad.abs().sum() > 0
    assert net.features[1].bias.grad.abs().sum() > 0


def test_training_runs_the_plain_layers():
    net = ARCHITECTURES["lenet"](batch_norm=True).train()
    before = net.features[1].running_mean.clone()
    net(torch.randn(8, 1, 28, 28) + 5)
    assert not torch.equal(net.features[1].running_mean, before)


@pytest.mark.parametrize("first", range(1, 22, 2))
def test_deep_network_takes_every_odd_first_kernel_that_leaves_a_pixel_to_pool(first):
    # The first convolution is unpadded, then three 2x2 poolings halve the side.
    side = 28 - first + 1
    for _ in range(3):
        side //= 2
    x = torch.randn(2, 1, 28, 28)
    # The later convolutions are padded to keep the side, whatever their kernels.
    for later in [(3, 3), (5, 1), (7, 9)]:
        net = DeepCNN(kernel_sizes=(first, *later)).eval()
        kernels = [layer.kernel_size for layer in net.features if isinstance(layer, nn.Conv2d)]
        assert kernels == [(k, k) for k in (first, *later)]
        assert net.features(x).shape == (2, 128, side, side)
        assert net(x).shape == (2, 10)


@pytest.mark.parametrize(
    "kernel_sizes",
    [(23, 3, 3), (4, 3, 3), (5, 3), (5, 3, 3, 3), (5, -1, 3), (5, 0, 3), (5.0, 3, 3), (True, 3, 3), "533", 5],
)
def test_deep_network_refuses_kernels_it_cannot_stack(kernel_sizes):
    with pytest.raises(
        ValueError, match="kernel_sizes must be three positive odd ints, the first at most 21"
    ):
        DeepCNN(kernel_sizes=kernel_sizes)
