"""How much of a camera's frames survives LeRobot's video encoders? Renders frames of an env config's camera,
encodes and decodes them with LeRobot's own ``encode_video_frames`` / ``decode_video_frames`` under several
encoder settings, and prints per setting the bytes a frame, the largest and mean errors in grey levels, and the
red-target pixels left per frame (r > g + 40 and r > b + 40: the Reacher target's colour).

    python tools/video_encoding_probe.py [--env reach_pixels] [--episodes 4]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
from lerobot.configs.video import RGBEncoderConfig
from lerobot.datasets.video_utils import decode_video_frames, encode_video_frames
from PIL import Image

from cadence.envs import EnvConfig, make_env

SETTINGS = {"LeRobot default (AV1 yuv420p crf 30)": {}, "AV1 yuv420p crf 10": {"crf": 10},
            "H.264 yuv444p crf 0 (Cadence default)": {"vcodec": "h264", "pix_fmt": "yuv444p", "crf": 0},
            "H.264 yuv444p crf 10": {"vcodec": "h264", "pix_fmt": "yuv444p", "crf": 10},
            "AV1 (libaom) yuv444p crf 0": {"vcodec": "libaom-av1", "pix_fmt": "yuv444p", "crf": 0}}  # fmt: skip


def red_pixels(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N,) count of target-red pixels per frame."""
    x = frames.astype(int)
    return ((x[..., 0] > x[..., 1] + 40) & (x[..., 0] > x[..., 2] + 40)).sum((1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="reach_pixels", help="an env config with a camera section")
    parser.add_argument("--episodes", type=int, default=4, help="episodes of random actions to render")
    args = parser.parse_args()
    env, key = make_env(args.env), EnvConfig.load(args.env).camera.feature
    frames = []
    for seed in range(args.episodes):
        _, info = env.reset(seed=seed)
        frames.append(info[key])
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            frames.append(info[key])
            done = terminated or truncated
    frames = np.stack(frames)
    fps = round(1.0 / env.unwrapped.dt)
    print(f"{len(frames)} frames of {args.env}; rendered: {red_pixels(frames).mean():.1f} red pixels a frame")
    for name, kwargs in SETTINGS.items():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "frames").mkdir()
            for i, frame in enumerate(frames):
                Image.fromarray(frame).save(tmp / "frames" / f"frame-{i:06d}.png")
            encode_video_frames(tmp / "frames", tmp / "video.mp4", fps, RGBEncoderConfig(**kwargs))
            size = (tmp / "video.mp4").stat().st_size / len(frames)
            decoded = decode_video_frames(tmp / "video.mp4", [i / fps for i in range(len(frames))], 1e-4,
                                          backend="pyav", return_uint8=True).permute(0, 2, 3, 1).numpy()  # fmt: skip
        error = np.abs(decoded.astype(int) - frames)
        print(f"{name:40s} {size:6.0f} B/frame  max error {error.max():3d}  mean error {error.mean():.2f}  "
              f"red pixels {red_pixels(decoded).mean():.1f} a frame (min {red_pixels(decoded).min()})")
    png = np.mean([len(_png(f)) for f in frames])
    print(f"{'PNG (LeRobot image feature)':40s} {png:6.0f} B/frame  lossless")


def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
