"""Seed 004's last application: neural style transfer (Gatys et al., 2016) with vizkit.

Paints scikit-image's astronaut photo in the style of its immunohistochemistry slide, using the
features of the zoo's VGG-16 (no classifier top). No ImageNet weights can be downloaded here, so
the network keeps its random initial weights. Random features carry the style image's colour
statistics but little of its texture: the result is the astronaut recoloured in the slide's
browns and blues, not the paper's painterly textures, which need trained features (pass your own
trained VGG instead; He, Wang & Hopcroft, 2016, show what carefully scaled random weights can
do). The losses printed and saved show the optimisation itself: the style (Gram) loss falls by
two orders of magnitude while the content loss stays small.

    python examples/style_transfer.py --out runs/style_transfer
    python examples/style_transfer.py --out /tmp/style --quick
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np
from skimage import data as photos

import models
import vizkit
from vizkit.methods.style_transfer import default_layers, style_losses
from vizkit.plot import plot_grid, save_figure


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/style_transfer", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    args = parser.parse_args(argv)
    side, steps, width = (64, 20, 0.25) if args.quick else (128, 200, 0.5)
    steps = args.steps or steps
    out = Path(args.out)

    keras.utils.set_random_seed(0)
    model = models.create_model("vgg16", (side, side, 3), include_top=False, width=width)
    content, style = photos.astronaut(), photos.immunohistochemistry()
    content_layers, style_layers = default_layers(model)
    result, history = vizkit.style_transfer(
        model,
        content,
        style,
        steps=steps,
        style_weight=100.0,
        tv_weight=0.05,
        learning_rate=0.05,
        return_history=True,
    )

    shown = [_resized(content, side), _resized(style, side), result]
    fig = plot_grid(
        shown,
        titles=["content", "style", f"style transfer ({steps} steps)"],
        ncols=3,
        title="VGG-16 features (random weights)",
    )
    save_figure(fig, out / "style_transfer.png", overwrite=True)
    save_figure(plot_grid([result], titles=["result"]), out / "result.png", overwrite=True)
    losses = {
        "content image": style_losses(model, _resized(content, side), content, style),
        "result": style_losses(model, result, content, style),
        "content_layers": content_layers,
        "style_layers": style_layers,
        "objective_first_last": [float(history[0]), float(history[-1])],
    }
    (out / "losses.json").write_text(json.dumps(losses, indent=2) + "\n")
    print(json.dumps(losses, indent=2))
    return out


def _resized(image, side: int) -> np.ndarray:
    import tensorflow as tf

    x = np.asarray(image, np.float32) / 255.0
    return tf.image.resize(x, (side, side), method="area").numpy()


if __name__ == "__main__":
    main()
