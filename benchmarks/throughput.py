"""Training and inference throughput of the five networks at their reference shapes and batches.

Runs ``keras-zoo benchmark`` once per (model, precision) in a fresh process and prints its JSON lines
(also appended to ``--out``). Examples::

    python benchmarks/throughput.py --preset tiny                      # CPU smoke run
    KERAS_BACKEND=jax python benchmarks/throughput.py --precisions fp32 bf16 --modes both --flops

Reference configs (preset "default") and batches: U-Net 256x256x1 batch 2, Genesis 64x64x32x1 batch 6,
CascadeNet D5-C5 256x256 batch 10, DeepLabv3+ 513x513x3 batch 8, AmoebaNet-D 224x224x3 batch 64.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODELS = ("unet", "genesis", "cascadenet", "deeplabv3plus", "amoebanet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--precisions", nargs="+", default=["fp32"])
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--modes", default="train", choices=("train", "infer", "both"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", nargs="*", default=[], help="MODEL=N overrides of the reference batch")
    parser.add_argument("--flops", action="store_true")
    parser.add_argument("--out", help="append the JSON lines to this file")
    args = parser.parse_args()
    batches = dict(item.split("=") for item in args.batch)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    status = 0
    for model in args.models:
        for precision in args.precisions:
            cmd = [
                sys.executable,
                "-m",
                "keras_zoo.cli.benchmark",
                "--model",
                model,
                "--preset",
                args.preset,
                "--precision",
                precision,
                "--jit",
                args.jit,
                "--mode",
                args.modes,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
            ]
            if model in batches:
                cmd += ["--batch-size", batches[model]]
            if args.flops:
                cmd.append("--flops")
            result = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
            lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
            if result.returncode or not lines:
                status = 1
                err = (result.stderr.strip().splitlines() or ["no output"])[-1]
                lines = [json.dumps({"model": model, "precision": precision, "error": err})]
            for line in lines:
                print(line, flush=True)
                if args.out:
                    with open(args.out, "a", encoding="utf-8") as f:
                        f.write(line + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
