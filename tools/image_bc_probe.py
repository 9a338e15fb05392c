"""Does BC's action loss teach the policies' image encoder what the task needs? Trains
:class:`cadence.policies.image_encoder.ImageEncoder` with a 2-layer head on a cue-task camera dataset (``reach_pixels``:
the cued target is ``observation.environment_state`` dims 6..9) either to name the target (``--mode class``,
cross-entropy) or to predict the expert's action from the features and the state (``--mode action``, MSE on actions
normalized per dimension, BC's objective), holding out the last ``--held-out`` episodes; prints the held-out loss
(and accuracy) five times. ``--mode action_aux``: the action loss plus the target's cross-entropy from the image
features alone through a linear layer (an auxiliary loss on privileged information, used in training only).
``--mode floors``: the same head on vectors instead of frames (state; state + target;
state + velocities; full state), the reference points of the action loss.

    python tools/image_bc_probe.py DATASET --mode class|action|action_aux|floors [--steps 500] [--lr 1e-3] [--shift 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

from cadence.datasets.format import ACTION, OBS, STATE, data_files, read_info
from cadence.datasets.images import decode_images
from cadence.policies.image_encoder import ImageEncoder

FEATURES, TARGET, VELOCITY = 64, slice(6, 10), slice(4, 6)


def head(width: int, out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--mode", choices=["class", "action", "action_aux", "floors"], required=True)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--shift", type=int, default=4, help="random-shift pixels (the policies' default)")
    parser.add_argument("--held-out", type=int, default=30, help="last episodes held out")
    parser.add_argument("--camera", default="observation.images.top")
    args = parser.parse_args()
    torch.manual_seed(0)
    table = pa.concat_tables([pq.read_table(f, columns=["index", "episode_index", OBS, STATE, ACTION])
                              for f in data_files(args.dataset)])  # fmt: skip
    order = np.argsort(table["index"].to_numpy())
    column = lambda k: torch.tensor(np.stack(table[k].to_numpy(zero_copy_only=False))[order])  # noqa: E731
    obs, full, act = column(OBS), column(STATE), column(ACTION)
    episode = torch.tensor(table["episode_index"].to_numpy()[order])
    train = torch.nonzero(episode < episode.max() + 1 - args.held_out).squeeze(1)
    held = torch.nonzero(episode >= episode.max() + 1 - args.held_out).squeeze(1)
    scale = lambda x: (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)  # noqa: E731
    obs_n, act_n, target = scale(obs), scale(act), full[:, TARGET].argmax(1)
    if args.mode == "floors":
        for name, x in (("state", obs), ("state + target", torch.cat([obs, full[:, TARGET]], 1)),
                        ("state + velocities", torch.cat([obs, full[:, VELOCITY]], 1)), ("full state", full)):
            net, x = head(x.shape[1], act.shape[1]), scale(x)
            opt = torch.optim.AdamW(net.parameters(), args.lr)
            for _ in range(args.steps):
                i = train[torch.randint(len(train), (128,))]
                loss = (net(x[i]) - act_n[i]).square().mean()
                opt.zero_grad(), loss.backward(), opt.step()
            with torch.no_grad():
                print(f"{name:20s} held-out action error {(net(x[held]) - act_n[held]).square().mean():.3f}")
        return
    images = decode_images(args.dataset, read_info(args.dataset)["features"], [args.camera])
    encoder = ImageEncoder(tuple(images.shape[1:]), FEATURES, args.shift)
    acts = args.mode != "class"
    net = head(FEATURES + (obs.shape[1] if acts else 0), act.shape[1] if acts else 4)
    aux = nn.Linear(FEATURES, 4)  # action_aux: the target named from the image features
    opt = torch.optim.AdamW([*encoder.parameters(), *net.parameters(), *aux.parameters()], args.lr)

    def loss_of(i: torch.Tensor) -> tuple[torch.Tensor, float]:
        f = encoder(images[i])
        if args.mode == "class":
            y = net(f)
            return F.cross_entropy(y, target[i]), (y.argmax(1) == target[i]).float().mean().item()
        error = (net(torch.cat([f, obs_n[i]], 1)) - act_n[i]).square().mean()
        if args.mode == "action" or not encoder.training:  # the held-out loss is the action error alone
            named = (aux(f).argmax(1) == target[i]).float().mean().item() if args.mode == "action_aux" else float("nan")
            return error, named
        return error + F.cross_entropy(aux(f), target[i]), float("nan")

    t0 = time.time()
    for step in range(1, args.steps + 1):
        encoder.train()
        loss, _ = loss_of(train[torch.randint(len(train), (128,))])
        opt.zero_grad(), loss.backward(), opt.step()
        if step % max(1, args.steps // 5) == 0:
            encoder.eval()
            with torch.no_grad():
                held_loss, accuracy = loss_of(held[:2000])
            print(f"step {step}: train {loss.item():.3f}  held-out {held_loss.item():.3f}  accuracy {accuracy:.2f}  "
                  f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
