"""Layer-by-layer reference data for q-diffusion's QuantModel (dmeval's golden_quant_layers test).

Runs the reference (Xiuyu-Li/q-diffusion, imported, none of its code here) on a qdiff_quantmodel
golden directory (the layout of shared/golden/generators/qdiff_quantmodel: variants.json, calib.npz)
and its UNet directory (config.json, weights.pt, x.npy, t.npy), and records, for every variant that
quantizes activations, what each activation quantizer saw:

  init/<quantizer>/input   the input it was initialised from (the variant's call sequence run on the
                           first --calib-count calibration images), and init/<quantizer>/delta,
                           /zero_point, the parameters the reference computed from it; with
                           --calib-on-eval the call sequence runs on the evaluation input instead,
                           whose recorded input then is the initialisation input too (not stored
                           twice: layers.json says "init_input": "eval");
  eval/<quantizer>/input   its input in one quantized forward of UNet input --eval-index, and
                           eval/<quantizer>/code (int16: the clamped integer grid value);
  eval/eps                 that forward's output; eval/x, eval/t its input.

Quantizer names as in the golden variant files (module path without 'model.').  The test feeds each
dmeval quantizer the reference's recorded input (teacher forcing), so float summation differences
never accumulate across layers.  Writes <out>/layers_<variant>.npz and <out>/layers.json.

Usage: GEN_QDIFF=<q-diffusion checkout> OMP_NUM_THREADS=1 python3 qdiff_layers.py --unet DIR
         --qdir DIR --out DIR [--calib-count 1] [--eval-index 1] [--variants a,b]
Needs ../shared/oracle/generators/_common.py (found relative to this file or via --oracle).
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
    ap.add_argument("--unet", required=True)
    ap.add_argument("--qdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--calib-count", type=int, default=1)
    ap.add_argument("--eval-index", type=int, default=1)
    ap.add_argument("--variants", default="")
    ap.add_argument("--calib-on-eval", action="store_true")
    ap.add_argument("--oracle", default=os.path.join(here, "..", "..", "..", "shared", "oracle", "generators"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.abspath(a.oracle))
    import _common as C  # shared/oracle helper: repository lookup, CPU shim, namespaces

    qd = C.repo_dir("GEN_QDIFF")
    C.stub_einops()
    C.install_cpu_shim()
    sys.path.insert(0, qd)
    from ddim.models.diffusion import Model as QModel
    from qdiff import QuantModel
    from qdiff.quant_layer import UniformAffineQuantizer
    from qdiff.adaptive_rounding import AdaRoundQuantizer
    from qdiff.utils import convert_adaround

    cfg = json.load(open(os.path.join(a.unet, "config.json")))
    sd = torch.load(os.path.join(a.unet, "weights.pt"))
    x = torch.from_numpy(np.load(os.path.join(a.unet, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(a.unet, "t.npy")))
    cal = np.load(os.path.join(a.qdir, "calib.npz"))
    x_c = torch.from_numpy(cal["x_c"])[: a.calib_count]
    t_c = torch.from_numpy(cal["t_c"])[: a.calib_count]
    x_e, t_e = x[a.eval_index : a.eval_index + 1], t[a.eval_index : a.eval_index + 1]
    if a.calib_on_eval:
        x_c, t_c = x_e, t_e.to(torch.int64)
    info = json.load(open(os.path.join(a.qdir, "variants.json")))
    wanted = set(filter(None, a.variants.split(",")))
    os.makedirs(a.out, exist_ok=True)
    summary = []
    for v in info["variants"]:
        name = v["file"][: -len(".npz")]
        if v["act_quant_params"] is None or (wanted and name not in wanted):
            continue
        ns = C.namespace(cfg)
        ns.split_shortcut = v["split_shortcut"]
        m = QModel(ns)
        m.load_state_dict(sd)
        m.eval()
        qnn = QuantModel(model=m, weight_quant_params=v["weight_quant_params"],
                         act_quant_params=v["act_quant_params"], sm_abit=v["sm_abit"]).eval()
        arrays, phase, order = {}, {"name": None}, []

        def hook(qname):
            def pre(mod, inputs):
                if phase["name"] == "init" and not mod.inited:
                    if not a.calib_on_eval:
                        arrays[f"init/{qname}/input"] = inputs[0].detach().contiguous().numpy().copy()
                    order.append(qname)
                elif phase["name"] == "eval":
                    arrays[f"eval/{qname}/input"] = inputs[0].detach().contiguous().numpy().copy()

            def post(mod, inputs, out):
                if phase["name"] == "eval":
                    code = torch.round(out.detach() / mod.delta.detach()) + mod.zero_point
                    arrays[f"eval/{qname}/code"] = code.numpy().astype(np.int16)
            return pre, post

        with torch.no_grad():
            qnn.set_quant_state(True, False)
            qnn(x_c, t_c)
            if v["adaround_perturbed"]:
                convert_adaround(qnn)
                gp = torch.Generator().manual_seed(info["calib_seed"] + 1)
                for mod in qnn.model.modules():
                    if isinstance(mod, AdaRoundQuantizer):
                        mod.alpha.data += 2.0 * torch.randn(mod.alpha.shape, generator=gp)
            # after the first forward: the split layers' second quantizers exist only from then on
            acts = [(n, q) for n, q in qnn.model.named_modules()
                    if isinstance(q, UniformAffineQuantizer) and ".act_quantizer" in n]
            for n, q in acts:
                pre, post = hook(n)
                q.register_forward_pre_hook(pre)
                q.register_forward_hook(post)
            qnn.set_quant_state(True, True)
            phase["name"] = "init"
            qnn(x_c, t_c)
            for n, q in acts:
                if n in order:
                    arrays[f"init/{n}/delta"] = np.asarray(torch.as_tensor(q.delta).detach(), np.float32)
                    arrays[f"init/{n}/zero_point"] = np.asarray(torch.as_tensor(q.zero_point, dtype=torch.float32))
            phase["name"] = "eval"
            eps = qnn(x_e, t_e)
        arrays["eval/eps"] = eps.numpy()
        arrays["eval/x"] = x_e.numpy()
        arrays["eval/t"] = t_e.numpy()
        np.savez_compressed(os.path.join(a.out, f"layers_{name}.npz"), **arrays)
        summary.append({"variant": v["file"], "quantizers": order, "eval_index": a.eval_index,
                        "init_input": "eval" if a.calib_on_eval else f"calib.npz x_c[:{a.calib_count}]"})
        print(name, len(order), "activation quantizers", flush=True)
    meta = C.env_info()
    meta.update({"q_diffusion_commit": C.head_commit(qd, "Xiuyu-Li/q-diffusion"),
                 "unet_dir": os.path.basename(os.path.normpath(a.unet)),
                 "unet_weights_sha256": C.sha256(os.path.join(a.unet, "weights.pt")),
                 "driver": "tests/oracle/qdiff_layers.py", "variants": summary})
    C.save_json(os.path.join(a.out, "layers.json"), meta)


if __name__ == "__main__":
    main()
