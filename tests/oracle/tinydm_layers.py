"""Layer-by-layer reference data for TinyDM = APQ-DM (dmeval's golden_tinydm_layers test).

Loads the frozen state of a TinyDM pipeline golden (pipeline_<name>.json/.npz, the layout of
shared/golden/tinydm: logits and group ranges after the last round, weight ranges) into a fresh
reference model (ChangyuanWang17/APQ-DM, imported, none of its code here), as the oracle's
check_golden.py does, evaluates it on the pipeline's forward/x (the first --batch images) at the
given step indices, and records what every quantized layer's activation quantizer saw:

  k<k>/<layer>/input    the quantizer's input (float32)
  k<k>/<layer>/output   its output (the dequantized activation fed to the convolution)
  k<k>/eps              the network output; k<k>/t its timestep input; x the network input

The test feeds each dmeval quantizer the recorded input (teacher forcing), so float summation
differences never accumulate across layers.  Writes <out>/layers_<name>.npz and .json.

Usage: TDM_APQ=<APQ-DM checkout> OMP_NUM_THREADS=1 python3 tinydm_layers.py --pipeline DIR/NAME
         --unet DIR --out DIR [--steps 0,39] [--batch 1]
Needs ../shared/oracle/tinydm/_tdm_common.py (found relative to this file or via --oracle).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", required=True, help="path without .json/.npz")
    ap.add_argument("--unet", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", default="")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--oracle", default=os.path.join(here, "..", "..", "..", "shared", "oracle", "tinydm"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.abspath(a.oracle))
    import _tdm_common as C  # shared/oracle helper: reference set-up, namespaces, run arguments

    _, commit = C.setup_reference()
    from models.diffusion import Model
    from utils.quant_util import QConv2d

    info = json.load(open(a.pipeline + ".json"))
    z = np.load(a.pipeline + ".npz")
    S = info["S"]
    names = [l["name"] for l in info["quant_layers"]]
    m = Model(C.namespace(info["unet_config"]), quantization=True, sequence=info["seq"],
              args=C.run_args(S, info["bits"]))
    m.load_state_dict(torch.load(os.path.join(a.unet, "weights.pt")), strict=False)
    m.eval()
    last = f"round{info['rounds'] - 1}/groups_range"
    layers = []
    for n, q in m.named_modules():
        if isinstance(q, QConv2d):
            with torch.no_grad():
                q.alpha_activ.data.copy_(torch.from_numpy(z[f"final/alpha/{n}"]))
                q.groups_range.data.copy_(torch.from_numpy(z[last])[names.index(n)])
            q.weight_range_min = torch.from_numpy(z[f"final/weight_range_min/{n}"])
            q.weight_range_max = torch.from_numpy(z[f"final/weight_range_max/{n}"])
            q._calibrate = False
            layers.append((n, q))
    assert [n for n, _ in layers] == names
    arrays = {}
    key = {"k": None}

    def wrap(name, q):
        orig = q._quantize_activation

        def recorded(inputs):
            out = orig(inputs)
            arrays[f"k{key['k']}/{name}/input"] = inputs.detach().contiguous().numpy().copy()
            arrays[f"k{key['k']}/{name}/output"] = out.detach().contiguous().numpy().copy()
            return out
        q._quantize_activation = recorded

    for n, q in layers:
        wrap(n, q)
    x = torch.from_numpy(z["forward/x"])[: a.batch]
    steps = [int(s) for s in a.steps.split(",")] if a.steps else [0, S - 1]
    rs = info["step_index_to_timestep"]
    arrays["x"] = x.numpy()
    for k in steps:
        key["k"] = k
        for _, q in layers:
            q.index_seq = k
        t = torch.full((x.shape[0],), float(rs[k]))
        with torch.no_grad():
            eps = m(x, t)
        arrays[f"k{k}/eps"] = eps.numpy()
        arrays[f"k{k}/t"] = t.numpy()
        ref = z[f"forward/k{k}/eps_quant"][: a.batch] if f"forward/k{k}/eps_quant" in z.files else None
        print(f"k={k}: {len(layers)} layers; eps equals the pipeline's forward/k{k}:",
              None if ref is None else bool(np.array_equal(eps.numpy(), ref)), flush=True)
    name = os.path.basename(a.pipeline)
    os.makedirs(a.out, exist_ok=True)
    np.savez_compressed(os.path.join(a.out, f"layers_{name}.npz"), **arrays)
    meta = {"reference": {"repository": "ChangyuanWang17/APQ-DM", "commit": commit},
            "pipeline": name, "unet_dir": os.path.basename(os.path.normpath(a.unet)),
            "weights_sha256": info["weights_sha256"], "step_indices": steps, "batch": a.batch,
            "layers": names, "driver": "tests/oracle/tinydm_layers.py", "env": C.env_info()}
    with open(os.path.join(a.out, f"layers_{name}.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
