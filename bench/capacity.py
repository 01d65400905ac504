"""Does a larger deblurrer than `nafnet-w16` pay, at CPU cost? A controlled test on top of the shipped starter.

A NAFBlock starts as the identity (its residual scales beta and gamma are 0), so the starter can grow extra
blocks and still compute exactly what it did. This script writes that grown checkpoint; training it and the
starter itself for the same steps on the same pairs (a fifth stage) tells what the extra capacity alone buys:

    python bench/capacity.py --out runs/cap/grown.pt            # the starter with extra blocks, as a checkpoint
    b2b-train deblurrer --pairs P --init runs/cap/grown.pt --out runs/cap/grown ...   # and --init starter
    python bench/domains.py --deblurrer runs/cap/grown/last.pt   # Kodak `known`; b2b-eval deblur for RSBlur

It prints each network's parameters and GFLOP per 640x360 frame (the issue's budget: 1.5 x the starter's).
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from blur2blur.models import create_model
from blur2blur.models.checkpoint import load_checkpoint, save_checkpoint


def gflop(model: torch.nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, 360, 640))
    return counter.get_total_flops() / 1e9


def grow(model: torch.nn.Module, enc_blk_nums: list[int], middle_blk_num: int) -> torch.nn.Module:
    """A NAFNet of the same width with at least as many blocks per level, computing what ``model`` computes."""
    args = dict(model.arch_args, enc_blk_nums=enc_blk_nums, middle_blk_num=middle_blk_num)
    grown = create_model("nafnet-custom", **args)
    unexpected = grown.load_state_dict(model.state_dict(), strict=False).unexpected_keys
    if unexpected:
        raise SystemExit(f"the grown network lacks {unexpected[:3]}: give every level at least as many blocks")
    return grown.eval()  # the blocks it did not load start as the identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deblurrer", default="starter", help="checkpoint to grow (default: starter)")
    parser.add_argument("--enc", default="1,2,4,8", help="encoder blocks per level (the starter: 1,1,2,6)")
    parser.add_argument("--middle", type=int, default=4, help="middle blocks (the starter: 2)")
    parser.add_argument("--out", required=True, help="where to write the grown checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(args.deblurrer, kind="deblurrer")
    model = model.float()
    grown = grow(model, [int(n) for n in args.enc.split(",")], args.middle)
    frame = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        same = (grown(frame) - model(frame)).abs().max().item()
    save_checkpoint(args.out, grown, "deblurrer", meta={"grown_from": args.deblurrer})
    print("| network | params (M) | GFLOP per 640x360 |\n|---|---|---|")
    for name, net in ((args.deblurrer, model), (f"grown ({args.enc}; middle {args.middle})", grown)):
        print(f"| {name} | {sum(p.numel() for p in net.parameters()) / 1e6:.2f} | {gflop(net):.2f} |")
    print(f"\n{args.out}: grown output - original output, max |diff| {same:.1e} (new blocks start as the identity)")


if __name__ == "__main__":
    main()
